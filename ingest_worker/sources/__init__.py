"""Where document events come from: a watched folder, or a Kafka topic."""
