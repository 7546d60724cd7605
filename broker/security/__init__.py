"""Who a client is and what it may do: credentials, users and access-control lists.

Each protocol keeps its own model, as Redis and Kafka do: one module per concern (see the
module docstrings). Nothing here touches a socket or a clock.
"""
