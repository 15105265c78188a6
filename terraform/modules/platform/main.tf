# The whole AWS footprint of one environment: KMS key, VPC, EKS, Amazon MQ, MSK, RDS, OpenSearch
# and ECR. envs/<name>/ call this with the environment's sizes; its outputs feed the Helm values.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  tags = merge(var.tags, { Project = "ecommerce-platform", Environment = var.environment })
}

# ---------------------------------------------------------------- one KMS key for the environment

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:a key policy's "*" resource is the key itself; administration stays with the account's own IAM policies (AWS's default key policy)
  #checkov:skip=CKV_AWS_111:as above: the statement grants the account, whose IAM policies then decide
  #checkov:skip=CKV_AWS_356:as above: in a key policy "*" can only mean this key
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "ecommerce-platform ${var.environment}: EKS secrets, volumes, logs, MQ, MSK, RDS, OpenSearch, ECR"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# ---------------------------------------------------------------- the pieces

module "network" {
  source             = "../network"
  name               = var.name
  cluster_name       = var.name
  cidr               = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = aws_kms_key.this.arn
  tags               = local.tags
}

module "eks" {
  source              = "../eks"
  name                = var.name
  kubernetes_version  = var.kubernetes_version
  vpc_id              = module.network.vpc_id
  vpc_cidr            = module.network.vpc_cidr
  private_subnet_ids  = module.network.private_subnet_ids
  public_access_cidrs = var.eks_public_access_cidrs
  kms_key_arn         = aws_kms_key.this.arn
  node_instance_types = var.node_instance_types
  node_min_size       = var.node_min_size
  node_desired_size   = var.node_desired_size
  node_max_size       = var.node_max_size
  tags                = local.tags
}

# ---------------------------------------------------------------- the data stores, from the EKS nodes only

module "access" {
  source = "../client_access"
  for_each = {
    rabbitmq = {
      description = "Amazon MQ: AMQPS and the management API from the EKS nodes"
      ports       = { "AMQPS" = 5671, "Management API (HTTPS: the dead-letter tool, readiness)" = 443 }
    }
    kafka = {
      description = "MSK brokers: Kafka from the EKS nodes"
      ports       = { "Kafka (plaintext)" = 9092, "Kafka (TLS)" = 9094 }
    }
    postgres = {
      description = "RDS PostgreSQL from the EKS nodes"
      ports       = { "PostgreSQL" = 5432 }
    }
    opensearch = {
      description = "OpenSearch: HTTPS from the EKS nodes"
      ports       = { "HTTPS" = 443 }
    }
  }
  name                     = "${var.name}-${each.key}"
  description              = each.value.description
  ports                    = each.value.ports
  vpc_id                   = module.network.vpc_id
  client_security_group_id = module.eks.node_security_group_id
  tags                     = local.tags
}

module "mq" {
  source            = "../mq"
  name              = "${var.name}-rabbitmq"
  instance_type     = var.mq_instance_type
  deployment_mode   = var.mq_deployment_mode
  subnet_ids        = module.network.private_subnet_ids
  security_group_id = module.access["rabbitmq"].id
  kms_key_arn       = aws_kms_key.this.arn
  tags              = local.tags
}

module "msk" {
  source            = "../msk"
  name              = "${var.name}-kafka"
  instance_type     = var.msk_instance_type
  subnet_ids        = module.network.private_subnet_ids
  security_group_id = module.access["kafka"].id
  kms_key_arn       = aws_kms_key.this.arn
  tags              = local.tags
}

module "rds" {
  source              = "../rds"
  name                = "${var.name}-postgres"
  instance_class      = var.rds_instance_class
  multi_az            = var.rds_multi_az
  deletion_protection = var.deletion_protection
  subnet_ids          = module.network.private_subnet_ids
  security_group_id   = module.access["postgres"].id
  kms_key_arn         = aws_kms_key.this.arn
  tags                = local.tags
}

module "opensearch" {
  source            = "../opensearch"
  name              = "${var.name}-logs"
  instance_type     = var.opensearch_instance_type
  instance_count    = var.opensearch_instance_count
  dedicated_master  = var.opensearch_dedicated_master
  subnet_ids        = module.network.private_subnet_ids
  security_group_id = module.access["opensearch"].id
  kms_key_arn       = aws_kms_key.this.arn
  tags              = local.tags
}

module "ecr" {
  source       = "../ecr"
  repositories = ["ecommerce-platform", "ecommerce-kafka", "ecommerce-flink"]
  kms_key_arn  = aws_kms_key.this.arn
  tags         = local.tags
}
