variable "name" {
  description = "Cluster name"
  type        = string
}

variable "kafka_version" {
  description = "Kafka version (KRaft-based MSK versions start at 3.7.x.kraft)"
  type        = string
  default     = "3.7.x.kraft"
}

variable "instance_type" {
  description = "Broker instance type"
  type        = string
  default     = "kafka.m5.large"
}

variable "volume_size" {
  description = "GiB of storage per broker"
  type        = number
  default     = 100
}

variable "subnet_ids" {
  description = "Private subnets, one broker in each"
  type        = list(string)
}

variable "security_group_id" {
  description = "Its security group (modules/client_access: reachable from the EKS nodes only)"
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for data at rest and the broker logs"
  type        = string
}

variable "log_retention_days" {
  description = "Days the broker logs are kept"
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}
