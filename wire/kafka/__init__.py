"""The Kafka wire protocol, sans-IO."""
