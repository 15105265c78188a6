variable "region" {
  description = "AWS region"
  type        = string
  default     = "eu-west-1"
}

variable "availability_zones" {
  description = "Three availability zones of the region"
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to the EKS API's public endpoint (CI runners, operators); empty: private only"
  type        = list(string)
  default     = []
}
