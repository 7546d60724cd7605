"""One module per Kafka API served by pull mode."""
