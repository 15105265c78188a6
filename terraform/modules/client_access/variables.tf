variable "name" {
  description = "Security group name"
  type        = string
}

variable "description" {
  description = "What the group guards"
  type        = string
}

variable "ports" {
  description = "What each port is (the rule's description) -> TCP port admitted from the clients"
  type        = map(number)
}

variable "vpc_id" {
  description = "The VPC"
  type        = string
}

variable "client_security_group_id" {
  description = "Security group of the clients (the EKS nodes)"
  type        = string
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}
