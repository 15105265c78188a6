# OpenSearch: where the platform's logs go (Logstash in the Helm release ships them; the
# logsearch setup job installs the index template). Inside the VPC, encrypted, HTTPS only, with
# fine-grained access control whose master user lives in Secrets Manager.

resource "random_password" "master" {
  length           = 32
  special          = true
  override_special = "-_."
  min_special      = 1
  min_upper        = 1
  min_lower        = 1
  min_numeric      = 1
}

resource "aws_secretsmanager_secret" "master" {
  #checkov:skip=CKV2_AWS_57:OpenSearch's internal master user has no rotation integration; rotate by hand (docs/deployment.md)
  name        = "${var.name}/opensearch-master"
  description = "OpenSearch fine-grained access control master user"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "master" {
  secret_id     = aws_secretsmanager_secret.master.id
  secret_string = jsonencode({ username = "admin", password = random_password.master.result })
}

resource "aws_cloudwatch_log_group" "search" {
  for_each          = toset(["INDEX_SLOW_LOGS", "SEARCH_SLOW_LOGS", "ES_APPLICATION_LOGS", "AUDIT_LOGS"])
  name              = "/opensearch/${var.name}/${lower(each.value)}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "search_logs" {
  statement {
    actions   = ["logs:PutLogEvents", "logs:CreateLogStream"]
    resources = [for group in aws_cloudwatch_log_group.search : "${group.arn}:*"]
    principals {
      type        = "Service"
      identifiers = ["es.amazonaws.com"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "search" {
  policy_name     = "${var.name}-opensearch"
  policy_document = data.aws_iam_policy_document.search_logs.json
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "access" {
  #checkov:skip=CKV_AWS_283:AWS's recommended policy with fine-grained access control: the domain is reachable only inside the VPC (security group) and every request must authenticate as an internal user
  statement {
    actions   = ["es:ESHttp*"]
    resources = ["arn:aws:es:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:domain/${var.name}/*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
  }
}

resource "aws_opensearch_domain" "this" {
  #checkov:skip=CKV2_AWS_59:dedicated masters are var.dedicated_master: three in production, none on staging's single node
  #checkov:skip=CKV_AWS_318:as above: production runs three dedicated masters
  domain_name    = var.name
  engine_version = var.engine_version

  cluster_config {
    instance_type            = var.instance_type
    instance_count           = var.instance_count
    zone_awareness_enabled   = var.instance_count > 1
    dedicated_master_enabled = var.dedicated_master
    dedicated_master_type    = var.dedicated_master ? var.instance_type : null
    dedicated_master_count   = var.dedicated_master ? 3 : null
    dynamic "zone_awareness_config" {
      for_each = var.instance_count > 1 ? [1] : []
      content {
        availability_zone_count = min(var.instance_count, 3)
      }
    }
  }

  ebs_options {
    ebs_enabled = true
    volume_type = "gp3"
    volume_size = var.volume_size
  }

  vpc_options {
    subnet_ids         = slice(var.subnet_ids, 0, min(var.instance_count, length(var.subnet_ids)))
    security_group_ids = [var.security_group_id]
  }

  encrypt_at_rest {
    enabled    = true
    kms_key_id = var.kms_key_arn
  }

  node_to_node_encryption {
    enabled = true
  }

  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-2019-07"
  }

  advanced_security_options {
    enabled                        = true
    internal_user_database_enabled = true
    master_user_options {
      master_user_name     = "admin"
      master_user_password = random_password.master.result
    }
  }

  # access by the fine-grained rules above, from inside the VPC only (the security group)
  access_policies = data.aws_iam_policy_document.access.json

  log_publishing_options {
    log_type                 = "INDEX_SLOW_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.search["INDEX_SLOW_LOGS"].arn
    enabled                  = true
  }
  log_publishing_options {
    log_type                 = "SEARCH_SLOW_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.search["SEARCH_SLOW_LOGS"].arn
    enabled                  = true
  }
  log_publishing_options {
    log_type                 = "ES_APPLICATION_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.search["ES_APPLICATION_LOGS"].arn
    enabled                  = true
  }
  log_publishing_options {
    log_type                 = "AUDIT_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.search["AUDIT_LOGS"].arn
    enabled                  = true
  }

  software_update_options {
    auto_software_update_enabled = true
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_resource_policy.search]
}
