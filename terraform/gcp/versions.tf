terraform {
  required_version = ">= 1.5.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
    # the AWS side of the VPN to the MSK cluster's VPC (vpn.tf)
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }
  # State in a GCS bucket (versioned, CMEK): it holds the VPN tunnels' pre-shared keys.
  #   terraform init -backend-config=backend.hcl   (backend.hcl is not committed)
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
  default_labels = {
    managed-by = "terraform"
    part-of    = "ecommerce"
  }
}

provider "aws" {
  region = var.aws_region
  default_tags {
    tags = {
      ManagedBy = "terraform"
    }
  }
}
