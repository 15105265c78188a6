"""The Kafka sink: every domain event from RabbitMQ into Kafka, keyed by aggregate id."""
