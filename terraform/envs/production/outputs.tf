output "cluster_name" {
  description = "aws eks update-kubeconfig --name <this> --region <region>"
  value       = module.platform.cluster_name
}

output "ecr_repositories" {
  description = "Where CI pushes the images (tagged with the commit SHA)"
  value       = module.platform.ecr_repositories
}

output "secret_arns" {
  description = "Secrets Manager secrets the Kubernetes Secret is built from"
  value       = module.platform.secret_arns
}

output "helm_values" {
  description = "terraform output -raw helm_values > values-eks.yaml; helm upgrade --install ... -f values-eks.yaml"
  value       = module.platform.helm_values
}
