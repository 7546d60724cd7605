"""RESP2/RESP3: the Redis serialization protocol, sans-IO."""
