variable "repositories" {
  description = "Repository names: the platform image, the Kafka image, the Flink job image"
  type        = list(string)
}

variable "keep_images" {
  description = "Images kept per repository"
  type        = number
  default     = 50
}

variable "kms_key_arn" {
  description = "KMS key for the images"
  type        = string
}

variable "tags" {
  description = "Tags for every resource"
  type        = map(string)
  default     = {}
}
