# A data store's security group: TCP on the given ports from the clients' security group (the EKS
# nodes) and nothing else. Amazon MQ, MSK, RDS and OpenSearch each get one (modules/platform).

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:attached by the caller: modules/platform hands its id to the data store (mq, msk, rds, opensearch), which checkov does not follow across modules
  name        = var.name
  description = var.description
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "client" {
  for_each                     = var.ports
  security_group_id            = aws_security_group.this.id
  description                  = "${each.key} from the EKS nodes"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
}
