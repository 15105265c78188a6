variable "name" {
  description = "Instance identifier"
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version (the same major as compose and minikube run)"
  type        = string
  default     = "16.4"
}

variable "instance_class" {
  description = "Instance class"
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "GiB at creation (autoscaling up to four times that)"
  type        = number
  default     = 50
}

variable "multi_az" {
  description = "A standby in another zone"
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups"
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Refuse to delete the instance"
  type        = bool
  default     = true
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
  description = "KMS key for storage, the master secret and Performance Insights"
  type        = string
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}
