output "cluster_name" {
  description = "aws eks update-kubeconfig --name <this>"
  value       = module.eks.cluster_name
}

output "ecr_repositories" {
  description = "Where CI pushes the images"
  value       = module.ecr.repository_urls
}

output "secret_arns" {
  description = "Secrets Manager secrets to build the Kubernetes Secret from (values never leave AWS through Terraform outputs)"
  value = {
    rabbitmq          = module.mq.secret_arn
    postgres_master   = module.rds.master_secret_arn
    opensearch_master = module.opensearch.master_secret_arn
  }
}

output "helm_values" {
  description = "Non-secret Helm values for helm/ecommerce: terraform output -raw helm_values > values-eks.yaml"
  value = yamlencode({
    image = {
      repository = module.ecr.repository_urls["ecommerce-platform"]
    }
    rabbitmq = {
      host = module.mq.host
      port = 5671
      user = "ecommerce"
      tls  = true
    }
    postgresql = {
      host    = module.rds.host
      port    = module.rds.port
      sslmode = "require"
    }
    kafka = {
      bootstrapServers = module.msk.bootstrap_brokers
    }
    opensearch = {
      url = module.opensearch.url
    }
    logging = {
      logstash = { enabled = true }
    }
    bundled = {
      rabbitmq   = false
      postgresql = false
      redis      = true
      kafka      = false
    }
    bundledImages = {
      kafka = module.ecr.repository_urls["ecommerce-kafka"]
    }
    networkPolicy = {
      externalCIDRs = [module.network.vpc_cidr]
    }
    secrets = {
      create         = false
      existingSecret = "ecommerce-secrets"
    }
  })
}
