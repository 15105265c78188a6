variable "name" {
  description = "Name prefix of every resource (and the EKS cluster's name)"
  type        = string
}

variable "environment" {
  description = "Environment name, for tags"
  type        = string
}

variable "availability_zones" {
  description = "Three availability zones of the region"
  type        = list(string)
}

variable "vpc_cidr" {
  description = "The VPC's CIDR block"
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version"
  type        = string
  default     = "1.31"
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to the EKS API's public endpoint (CI runners, operators); empty: private only"
  type        = list(string)
  default     = []
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per zone"
  type        = bool
  default     = false
}

variable "node_instance_types" {
  description = "EKS node instance types"
  type        = list(string)
  default     = ["t3.large"]
}

variable "node_min_size" {
  description = "Fewest EKS nodes"
  type        = number
  default     = 2
}

variable "node_desired_size" {
  description = "EKS nodes at creation"
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Most EKS nodes"
  type        = number
  default     = 6
}

variable "mq_instance_type" {
  description = "Amazon MQ instance type"
  type        = string
  default     = "mq.m5.large"
}

variable "mq_deployment_mode" {
  description = "Amazon MQ deployment mode: SINGLE_INSTANCE or CLUSTER_MULTI_AZ"
  type        = string
  default     = "CLUSTER_MULTI_AZ"
}

variable "msk_instance_type" {
  description = "MSK broker instance type"
  type        = string
  default     = "kafka.m5.large"
}

variable "rds_instance_class" {
  description = "RDS instance class"
  type        = string
  default     = "db.t4g.medium"
}

variable "rds_multi_az" {
  description = "RDS standby in another zone"
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the database from deletion"
  type        = bool
  default     = true
}

variable "opensearch_instance_type" {
  description = "OpenSearch data node type"
  type        = string
  default     = "m6g.large.search"
}

variable "opensearch_instance_count" {
  description = "OpenSearch data nodes"
  type        = number
  default     = 3
}

variable "opensearch_dedicated_master" {
  description = "Three dedicated OpenSearch master nodes"
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags for every resource"
  type        = map(string)
  default     = {}
}
