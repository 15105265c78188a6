# Staging: the production layout at its smallest sizes (one NAT gateway, single-instance broker,
# single-zone database, one OpenSearch node).
module "platform" {
  source = "../../modules/platform"

  name                    = "ecommerce-staging"
  environment             = "staging"
  availability_zones      = var.availability_zones
  vpc_cidr                = "10.20.0.0/16"
  eks_public_access_cidrs = var.eks_public_access_cidrs
  single_nat_gateway      = true

  node_instance_types = ["t3.large"]
  node_min_size       = 2
  node_desired_size   = 2
  node_max_size       = 4

  mq_instance_type   = "mq.m5.large"
  mq_deployment_mode = "SINGLE_INSTANCE"
  msk_instance_type  = "kafka.t3.small"

  rds_instance_class  = "db.t4g.medium"
  rds_multi_az        = false
  deletion_protection = false

  opensearch_instance_type    = "t3.medium.search"
  opensearch_instance_count   = 1
  opensearch_dedicated_master = false
}
