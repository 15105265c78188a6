"""analytics: serves the latest KPI windows the Flink job (analytics/job.py) writes to Kafka."""
