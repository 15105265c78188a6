output "url" {
  description = "The domain's HTTPS endpoint (the Helm chart's opensearch.url)"
  value       = "https://${aws_opensearch_domain.this.endpoint}"
}

output "master_secret_arn" {
  description = "Secrets Manager secret of the master user"
  value       = aws_secretsmanager_secret.master.arn
}
