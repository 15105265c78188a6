variable "name" {
  description = "Cluster name"
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (the manifests are validated against this minor)"
  type        = string
  default     = "1.31"
}

variable "vpc_id" {
  description = "The VPC"
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's CIDR block: where the API may be reached from"
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets of the control plane's interfaces and of the nodes"
  type        = list(string)
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to the public API endpoint; empty: private endpoint only"
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key for Kubernetes secrets, node volumes and the control plane's logs"
  type        = string
}

variable "node_instance_types" {
  description = "Instance types of the managed node group"
  type        = list(string)
  default     = ["t3.large"]
}

variable "node_min_size" {
  description = "Fewest nodes"
  type        = number
  default     = 2
}

variable "node_desired_size" {
  description = "Nodes at creation (the cluster autoscaler moves it afterwards)"
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Most nodes"
  type        = number
  default     = 6
}

variable "node_disk_size" {
  description = "GiB of each node's root volume"
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Days the control plane's logs are kept"
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}
