variable "name" {
  description = "Broker name"
  type        = string
}

variable "engine_version" {
  description = "RabbitMQ version (quorum queues with x-delivery-limit need 3.13)"
  type        = string
  default     = "3.13"
}

variable "instance_type" {
  description = "Broker instance type"
  type        = string
  default     = "mq.m5.large"
}

variable "deployment_mode" {
  description = "SINGLE_INSTANCE or CLUSTER_MULTI_AZ"
  type        = string
  default     = "CLUSTER_MULTI_AZ"
}

variable "username" {
  description = "The platform's broker user"
  type        = string
  default     = "ecommerce"
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
  description = "KMS key for the broker's storage and its secret"
  type        = string
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}
