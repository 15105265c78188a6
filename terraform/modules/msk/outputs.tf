output "bootstrap_brokers" {
  description = "KAFKA_BOOTSTRAP_SERVERS (plaintext listeners, inside the VPC)"
  value       = aws_msk_cluster.this.bootstrap_brokers
}

output "bootstrap_brokers_tls" {
  description = "The TLS listeners, for clients that speak TLS"
  value       = aws_msk_cluster.this.bootstrap_brokers_tls
}
