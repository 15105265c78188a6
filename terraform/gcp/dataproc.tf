# The Flink cluster: one master (Flink's JobManager; Dataproc's Flink component has no HA mode),
# var.worker_count workers (TaskManagers on YARN), no public IP, shielded VMs, disks encrypted with
# the stack's key, the Flink and YARN UIs through the Component Gateway (IAM, no open port).
resource "google_dataproc_cluster" "flink" {
  name                          = var.name
  region                        = var.region
  graceful_decommission_timeout = "120s"
  labels                        = local.labels

  cluster_config {
    staging_bucket = google_storage_bucket.data["dataproc"].name
    temp_bucket    = google_storage_bucket.data["dataproc"].name

    gce_cluster_config {
      zone                   = var.zone
      subnetwork             = google_compute_subnetwork.dataproc.id
      internal_ip_only       = true
      service_account        = google_service_account.cluster.email
      service_account_scopes = ["cloud-platform"]
      tags                   = [local.node_tag]
      metadata = {
        enable-oslogin         = "TRUE"
        block-project-ssh-keys = "TRUE"
      }
      shielded_instance_config {
        enable_secure_boot          = true
        enable_vtpm                 = true
        enable_integrity_monitoring = true
      }
    }

    master_config {
      num_instances = 1
      machine_type  = var.master_machine_type
      disk_config {
        boot_disk_type    = "pd-balanced"
        boot_disk_size_gb = 100
      }
    }

    worker_config {
      num_instances = var.worker_count
      machine_type  = var.worker_machine_type
      disk_config {
        boot_disk_type    = "pd-balanced"
        boot_disk_size_gb = 100
      }
    }

    software_config {
      image_version       = var.dataproc_image_version
      optional_components = ["FLINK"]
      override_properties = {
        # Flink's defaults for every job: state in the analytics bucket, kept on cancel
        "flink:state.checkpoints.dir"                                     = "gs://${google_storage_bucket.data["analytics"].name}/checkpoints"
        "flink:state.savepoints.dir"                                      = "gs://${google_storage_bucket.data["analytics"].name}/savepoints"
        "flink:execution.checkpointing.externalized-checkpoint-retention" = "RETAIN_ON_CANCELLATION"
      }
    }

    endpoint_config {
      enable_http_port_access = true
    }

    encryption_config {
      kms_key_name = google_kms_crypto_key.this.id
    }
  }

  depends_on = [
    google_project_iam_member.cluster,
    google_storage_bucket_iam_member.cluster_analytics,
    google_storage_bucket_iam_member.cluster_dataproc,
    google_kms_crypto_key_iam_member.agents,
    google_compute_router_nat.this,
  ]
}
