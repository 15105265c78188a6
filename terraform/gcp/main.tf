# Analytics on GCP (seed 003): the PyFlink KPI job on a Dataproc cluster with the FLINK component,
# its checkpoints and KPI exports in Cloud Storage, reading the platform's events from the AWS MSK
# cluster over an HA VPN (vpn.tf; docs/deployment.md says why a VPN and not MirrorMaker).
#
#   main.tf      the APIs, the network: one private subnet, no public IPs, NAT for egress
#   kms.tf       one key (rotated) for the buckets and the cluster's disks
#   storage.tf   the analytics bucket (checkpoints/, savepoints/, kpis/), Dataproc's staging bucket,
#                the access-log bucket
#   iam.tf       the cluster's VM service account and the job submitter's, each with only what it uses
#   dataproc.tf  the Flink cluster
#   vpn.tf       HA VPN to the AWS VPC of MSK (both sides), BGP, and MSK's security group rule

locals {
  # the network tag of the cluster's VMs, which the firewall rules select
  node_tag = "${var.name}-node"
  labels = {
    app = var.name
  }
}

resource "google_project_service" "this" {
  for_each = toset([
    "cloudkms.googleapis.com",
    "compute.googleapis.com",
    "dataproc.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
  ])
  service = each.value
  # other resources of the project may use them too
  disable_on_destroy = false
}

data "google_project" "this" {}

resource "google_compute_network" "this" {
  name                    = var.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
  depends_on              = [google_project_service.this]
}

resource "google_compute_subnetwork" "dataproc" {
  name          = "${var.name}-dataproc"
  network       = google_compute_network.this.id
  region        = var.region
  ip_cidr_range = var.subnet_cidr
  # the VMs have no public IP: Cloud Storage and the Dataproc API through Google's private access
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Dataproc's nodes talk to each other on every port (YARN, HDFS, Flink's RPC and data exchange)
resource "google_compute_firewall" "internal" {
  name        = "${var.name}-internal"
  network     = google_compute_network.this.id
  description = "Dataproc nodes to each other"
  direction   = "INGRESS"
  source_tags = [local.node_tag]
  target_tags = [local.node_tag]
  allow {
    protocol = "tcp"
  }
  allow {
    protocol = "udp"
  }
  allow {
    protocol = "icmp"
  }
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# SSH to the master only through Identity-Aware Proxy (gcloud compute ssh --tunnel-through-iap),
# whose forwarding range this is; operators still need IAM and OS Login
resource "google_compute_firewall" "iap_ssh" {
  name          = "${var.name}-iap-ssh"
  network       = google_compute_network.this.id
  description   = "SSH through IAP to the Dataproc nodes"
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"]
  target_tags   = [local.node_tag]
  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Cloud Router: NAT for the VMs' egress (PyPI for the job's Python packages) and BGP for the VPN
resource "google_compute_router" "this" {
  name    = var.name
  network = google_compute_network.this.id
  region  = var.region
  bgp {
    asn = var.gcp_router_asn
  }
}

resource "google_compute_router_nat" "this" {
  name                               = var.name
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}
