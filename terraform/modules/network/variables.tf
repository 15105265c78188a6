variable "name" {
  description = "Name prefix of every resource"
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster name, for the subnet tags its load balancers look for"
  type        = string
}

variable "cidr" {
  description = "The VPC's CIDR block (a /16 gives /20 subnets)"
  type        = string
}

variable "availability_zones" {
  description = "Availability zones to spread the subnets over (names in the provider's region)"
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, not zone-redundant)"
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow logs"
  type        = string
}

variable "log_retention_days" {
  description = "Days the flow logs are kept"
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}
