output "vpc_id" {
  description = "The VPC"
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's CIDR block (the Helm chart's networkPolicy.externalCIDRs)"
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets: EKS nodes and the managed services"
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnets: internet-facing load balancers"
  value       = aws_subnet.public[*].id
}
