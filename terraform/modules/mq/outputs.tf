output "host" {
  description = "The broker's hostname (the Helm chart's rabbitmq.host; AMQPS on 5671)"
  value       = regex("^amqps://([^:]+):", aws_mq_broker.this.instances[0].endpoints[0])[0]
}

output "secret_arn" {
  description = "Secrets Manager secret holding the broker user's name and password"
  value       = aws_secretsmanager_secret.broker.arn
}
