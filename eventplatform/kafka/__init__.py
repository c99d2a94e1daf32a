"""The Kafka toolkit: configuration, topics, envelope, producer, consumer runtime, DLQ."""
