variable "name" {
  description = "Domain name"
  type        = string
}

variable "engine_version" {
  description = "OpenSearch version (the local run uses 2.19)"
  type        = string
  default     = "OpenSearch_2.19"
}

variable "instance_type" {
  description = "Data node instance type"
  type        = string
  default     = "m6g.large.search"
}

variable "instance_count" {
  description = "Data nodes (more than one spreads them over zones)"
  type        = number
  default     = 3
}

variable "dedicated_master" {
  description = "Three dedicated master nodes"
  type        = bool
  default     = true
}

variable "volume_size" {
  description = "GiB per data node"
  type        = number
  default     = 50
}

variable "subnet_ids" {
  description = "Private subnets"
  type        = list(string)
}

variable "security_group_id" {
  description = "Its security group (modules/client_access: reachable from the EKS nodes only)"
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for data at rest, logs and the master secret"
  type        = string
}

variable "log_retention_days" {
  description = "Days the domain's logs are kept"
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}
