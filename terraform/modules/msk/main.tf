# MSK: the Kafka cluster of the analytics pipeline (kafka_sink writes, the Flink job and analytics
# read), in the private subnets, encrypted at rest with KMS, broker logs to CloudWatch.

resource "aws_cloudwatch_log_group" "kafka" {
  name              = "/msk/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_msk_configuration" "this" {
  name           = var.name
  kafka_versions = [var.kafka_version]
  # topics are created by their owner's code (services/kafka_sink/topics.py)
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    min.insync.replicas=2
    default.replication.factor=3
  PROPERTIES
}

resource "aws_msk_cluster" "this" {
  #checkov:skip=CKV_AWS_81:client traffic allows PLAINTEXT inside the VPC because the services' kafka-python client (KAFKA_BOOTSTRAP_SERVERS) has no TLS setting yet; TLS listeners (9094) are on, at-rest encryption uses KMS
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = length(var.subnet_ids)

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [var.security_group_id]
    storage_info {
      ebs_storage_info {
        volume_size = var.volume_size
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS_PLAINTEXT"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.kafka.name
      }
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  tags = var.tags
}
