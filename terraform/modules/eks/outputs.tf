output "cluster_name" {
  description = "For `aws eks update-kubeconfig --name`"
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "The Kubernetes API"
  value       = aws_eks_cluster.this.endpoint
}

output "node_security_group_id" {
  description = "The security group EKS gives the nodes (the managed services admit it)"
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}
