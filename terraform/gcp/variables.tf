variable "project_id" {
  description = "The GCP project of the analytics cluster"
  type        = string
}

variable "region" {
  description = "GCP region of the network, the cluster and the bucket"
  type        = string
  default     = "europe-west1"
}

variable "zone" {
  description = "Zone of the Dataproc cluster's VMs (Flink on Dataproc runs one master, no HA)"
  type        = string
  default     = "europe-west1-b"
}

variable "name" {
  description = "Prefix of every resource's name"
  type        = string
  default     = "ecommerce-analytics"
}

variable "subnet_cidr" {
  description = "The Dataproc subnet; must not overlap the AWS VPC (the VPN routes between them)"
  type        = string
  default     = "10.40.0.0/20"
}

variable "dataproc_image_version" {
  description = "Dataproc image; it decides the Flink version of the FLINK component"
  type        = string
  default     = "2.2-debian12"
}

variable "master_machine_type" {
  description = "Machine type of the master (Flink's JobManager)"
  type        = string
  default     = "n2-standard-4"
}

variable "worker_machine_type" {
  description = "Machine type of the workers (Flink's TaskManagers)"
  type        = string
  default     = "n2-standard-4"
}

variable "worker_count" {
  description = "Number of primary workers"
  type        = number
  default     = 2
}

variable "checkpoint_retention_days" {
  description = "Days a checkpoint object is kept (Flink keeps the newest two itself)"
  type        = number
  default     = 7
}

variable "kpi_retention_days" {
  description = "Days a KPI export object is kept"
  type        = number
  default     = 365
}

variable "bucket_force_destroy" {
  description = "Let terraform destroy delete the bucket with its objects (staging only)"
  type        = bool
  default     = false
}

variable "job_submitters" {
  description = "Members (user:, group:) allowed to act as the job submitter service account"
  type        = list(string)
  default     = []
}

# ---- the AWS side: where MSK runs (terraform/envs/<env> of the AWS tree)

variable "aws_region" {
  description = "Region of the AWS VPC that holds MSK"
  type        = string
  default     = "eu-west-1"
}

variable "aws_vpc_id" {
  description = "The AWS VPC of MSK (the AWS tree's VPC, e.g. tag Name=ecommerce-staging)"
  type        = string
}

variable "aws_private_route_table_ids" {
  description = "Route tables of the AWS private subnets (MSK's): they learn the GCP subnet over BGP"
  type        = list(string)
}

variable "msk_security_group_id" {
  description = "Security group of the MSK brokers: it gets the GCP subnet on the Kafka port"
  type        = string
}

variable "msk_port" {
  description = "MSK listener the Flink job uses (9092 plaintext inside the VPC and the IPsec tunnels, as on EKS)"
  type        = number
  default     = 9092
}

variable "gcp_router_asn" {
  description = "BGP ASN of the Cloud Router (private range)"
  type        = number
  default     = 65010
}

variable "aws_vgw_asn" {
  description = "BGP ASN of the AWS virtual private gateway (private range)"
  type        = number
  default     = 64512
}
