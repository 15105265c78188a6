# Amazon MQ for RabbitMQ: the platform's broker (AMQPS on 5671), reachable from the EKS nodes only.
# The application user's password is generated here and kept in Secrets Manager: never in code.

resource "random_password" "broker" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "broker" {
  #checkov:skip=CKV2_AWS_57:Amazon MQ has no rotation integration; rotate by changing it in both places (docs/deployment.md)
  name        = "${var.name}/rabbitmq"
  description = "Amazon MQ user of the platform (AMQP_URI)"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "broker" {
  secret_id     = aws_secretsmanager_secret.broker.id
  secret_string = jsonencode({ username = var.username, password = random_password.broker.result })
}

resource "aws_security_group" "broker" {
  name        = "${var.name}-rabbitmq"
  description = "Amazon MQ: AMQPS and the management API from the EKS nodes"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "amqps" {
  security_group_id            = aws_security_group.broker.id
  description                  = "AMQPS from the EKS nodes"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5671
  to_port                      = 5671
}

resource "aws_vpc_security_group_ingress_rule" "management" {
  security_group_id            = aws_security_group.broker.id
  description                  = "Management API (HTTPS) from the EKS nodes: the dead-letter tool, readiness"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_mq_broker" "this" {
  broker_name                = var.name
  engine_type                = "RabbitMQ"
  engine_version             = var.engine_version
  host_instance_type         = var.instance_type
  deployment_mode            = var.deployment_mode
  publicly_accessible        = false
  auto_minor_version_upgrade = true
  subnet_ids                 = var.deployment_mode == "SINGLE_INSTANCE" ? [var.subnet_ids[0]] : var.subnet_ids
  security_groups            = [aws_security_group.broker.id]

  encryption_options {
    use_aws_owned_key = false
    kms_key_id        = var.kms_key_arn
  }

  logs {
    general = true
  }

  maintenance_window_start_time {
    day_of_week = "SUNDAY"
    time_of_day = "03:00"
    time_zone   = "UTC"
  }

  user {
    username = var.username
    password = random_password.broker.result
  }

  tags = var.tags
}
