output "host" {
  description = "The instance's hostname (the Helm chart's postgresql.host)"
  value       = aws_db_instance.this.address
}

output "port" {
  description = "The instance's port"
  value       = aws_db_instance.this.port
}

output "master_secret_arn" {
  description = "Secrets Manager secret of the master user (managed and rotated by RDS)"
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
