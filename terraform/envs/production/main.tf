# Production: three zones everywhere (NAT per zone, clustered broker, Multi-AZ database,
# three OpenSearch data nodes with dedicated masters).
module "platform" {
  source = "../../modules/platform"

  name                    = "ecommerce-production"
  environment             = "production"
  availability_zones      = var.availability_zones
  vpc_cidr                = "10.30.0.0/16"
  eks_public_access_cidrs = var.eks_public_access_cidrs

  node_instance_types = ["m6i.large"]
  node_min_size       = 3
  node_desired_size   = 3
  node_max_size       = 9

  mq_instance_type   = "mq.m5.large"
  mq_deployment_mode = "CLUSTER_MULTI_AZ"
  msk_instance_type  = "kafka.m5.large"

  rds_instance_class  = "db.m6g.large"
  rds_multi_az        = true
  deletion_protection = true

  opensearch_instance_type    = "m6g.large.search"
  opensearch_instance_count   = 3
  opensearch_dedicated_master = true
}
