terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }
  # State in S3 with locking; the bucket, key and table are given at init:
  #   terraform init -backend-config=backend.hcl   (backend.hcl is not committed)
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      ManagedBy = "terraform"
    }
  }
}
