output "repository_urls" {
  description = "Repository URLs by name (image.repository in the Helm values)"
  value       = { for name, repo in aws_ecr_repository.this : name => repo.repository_url }
}
