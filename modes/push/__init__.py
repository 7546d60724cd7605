"""Push mode: the Redis-protocol (RESP) pub/sub front-end."""
