"""Pull mode: the Kafka-protocol front-end over the retained log."""
