# The Flink job reads the platform's events from MSK and writes its KPI topic back there, so the
# cluster reaches MSK's brokers over an HA VPN between this network and the AWS VPC of MSK:
# two AWS site-to-site VPN connections (two tunnels each) to the two interfaces of a GCP HA VPN
# gateway, four tunnels in all, routes exchanged by BGP. docs/deployment.md says why this and not
# MirrorMaker. Both sides are here, so the tunnels' addresses and keys never pass through a person.

resource "google_compute_ha_vpn_gateway" "aws" {
  name    = "${var.name}-aws"
  region  = var.region
  network = google_compute_network.this.id
}

resource "aws_vpn_gateway" "gcp" {
  vpc_id          = var.aws_vpc_id
  amazon_side_asn = var.aws_vgw_asn
  tags = {
    Name = "${var.name}-gcp"
  }
}

# the private subnets' route tables (MSK's) learn the GCP subnet from BGP
resource "aws_vpn_gateway_route_propagation" "gcp" {
  for_each       = toset(var.aws_private_route_table_ids)
  vpn_gateway_id = aws_vpn_gateway.gcp.id
  route_table_id = each.value
}

# one customer gateway per interface of the HA VPN gateway
resource "aws_customer_gateway" "gcp" {
  count      = 2
  bgp_asn    = var.gcp_router_asn
  ip_address = google_compute_ha_vpn_gateway.aws.vpn_interfaces[count.index].ip_address
  type       = "ipsec.1"
  tags = {
    Name = "${var.name}-gcp-${count.index}"
  }
}

resource "aws_vpn_connection" "gcp" {
  count               = 2
  vpn_gateway_id      = aws_vpn_gateway.gcp.id
  customer_gateway_id = aws_customer_gateway.gcp[count.index].id
  type                = "ipsec.1"
  static_routes_only  = false
  # IKEv2 with AES-256 and SHA-256 only, which GCP's tunnels offer too
  tunnel1_ike_versions                 = ["ikev2"]
  tunnel2_ike_versions                 = ["ikev2"]
  tunnel1_phase1_encryption_algorithms = ["AES256"]
  tunnel2_phase1_encryption_algorithms = ["AES256"]
  tunnel1_phase2_encryption_algorithms = ["AES256"]
  tunnel2_phase2_encryption_algorithms = ["AES256"]
  tunnel1_phase1_integrity_algorithms  = ["SHA2-256"]
  tunnel2_phase1_integrity_algorithms  = ["SHA2-256"]
  tunnel1_phase2_integrity_algorithms  = ["SHA2-256"]
  tunnel2_phase2_integrity_algorithms  = ["SHA2-256"]
  tunnel1_phase1_dh_group_numbers      = [14]
  tunnel2_phase1_dh_group_numbers      = [14]
  tunnel1_phase2_dh_group_numbers      = [14]
  tunnel2_phase2_dh_group_numbers      = [14]
  tags = {
    Name = "${var.name}-gcp-${count.index}"
  }
}

locals {
  # the four tunnels: connection c's tunnel t ends on HA VPN interface c and on peer interface 2c+t
  tunnels = flatten([
    for c, connection in aws_vpn_connection.gcp : [
      {
        interface      = c
        peer_interface = 2 * c
        peer_ip        = connection.tunnel1_address
        secret         = connection.tunnel1_preshared_key
        gcp_bgp_ip     = connection.tunnel1_cgw_inside_address
        aws_bgp_ip     = connection.tunnel1_vgw_inside_address
      },
      {
        interface      = c
        peer_interface = 2 * c + 1
        peer_ip        = connection.tunnel2_address
        secret         = connection.tunnel2_preshared_key
        gcp_bgp_ip     = connection.tunnel2_cgw_inside_address
        aws_bgp_ip     = connection.tunnel2_vgw_inside_address
      },
    ]
  ])
}

resource "google_compute_external_vpn_gateway" "aws" {
  name            = "${var.name}-aws"
  redundancy_type = "FOUR_IPS_REDUNDANCY"
  dynamic "interface" {
    for_each = local.tunnels
    content {
      id         = interface.value.peer_interface
      ip_address = interface.value.peer_ip
    }
  }
}

resource "google_compute_vpn_tunnel" "aws" {
  count                           = 4
  name                            = "${var.name}-aws-${count.index}"
  region                          = var.region
  vpn_gateway                     = google_compute_ha_vpn_gateway.aws.id
  vpn_gateway_interface           = local.tunnels[count.index].interface
  peer_external_gateway           = google_compute_external_vpn_gateway.aws.id
  peer_external_gateway_interface = local.tunnels[count.index].peer_interface
  shared_secret                   = local.tunnels[count.index].secret
  router                          = google_compute_router.this.id
  ike_version                     = 2
}

resource "google_compute_router_interface" "aws" {
  count      = 4
  name       = "${var.name}-aws-${count.index}"
  router     = google_compute_router.this.name
  region     = var.region
  ip_range   = "${local.tunnels[count.index].gcp_bgp_ip}/30"
  vpn_tunnel = google_compute_vpn_tunnel.aws[count.index].name
}

resource "google_compute_router_peer" "aws" {
  count           = 4
  name            = "${var.name}-aws-${count.index}"
  router          = google_compute_router.this.name
  region          = var.region
  interface       = google_compute_router_interface.aws[count.index].name
  peer_ip_address = local.tunnels[count.index].aws_bgp_ip
  peer_asn        = var.aws_vgw_asn
}

# MSK's brokers accept the Dataproc subnet on the job's listener, and nothing else from GCP
resource "aws_security_group_rule" "msk_from_gcp" {
  type              = "ingress"
  description       = "Kafka from the GCP Dataproc subnet over the VPN (${var.name})"
  security_group_id = var.msk_security_group_id
  protocol          = "tcp"
  from_port         = var.msk_port
  to_port           = var.msk_port
  cidr_blocks       = [var.subnet_cidr]
}
