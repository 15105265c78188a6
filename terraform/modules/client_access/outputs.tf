output "id" {
  description = "The security group to attach to the data store"
  value       = aws_security_group.this.id
}
