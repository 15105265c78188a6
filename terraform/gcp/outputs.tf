output "cluster_name" {
  description = "The Dataproc cluster: gcloud dataproc clusters describe NAME --region REGION"
  value       = google_dataproc_cluster.flink.name
}

output "analytics_bucket" {
  description = "Bucket of the Flink job's checkpoints/, savepoints/ and kpis/"
  value       = google_storage_bucket.data["analytics"].name
}

output "checkpoint_dir" {
  description = "Flink's state.checkpoints.dir on the cluster"
  value       = "gs://${google_storage_bucket.data["analytics"].name}/checkpoints"
}

output "kpi_export_prefix" {
  description = "Where KPI exports go"
  value       = "gs://${google_storage_bucket.data["analytics"].name}/kpis/"
}

output "staging_bucket" {
  description = "Dataproc's staging and temp bucket (job files, driver output)"
  value       = google_storage_bucket.data["dataproc"].name
}

output "cluster_service_account" {
  description = "Service account of the cluster's VMs"
  value       = google_service_account.cluster.email
}

output "submitter_service_account" {
  description = "Impersonate it to submit jobs: gcloud ... --impersonate-service-account EMAIL"
  value       = google_service_account.submitter.email
}

output "vpn_tunnels" {
  description = "The four VPN tunnels to the AWS VPC (check: gcloud compute vpn-tunnels describe NAME --region REGION)"
  value       = google_compute_vpn_tunnel.aws[*].name
}
