# analytics: the Flink job's checkpoints/ and savepoints/ (state.checkpoints.dir, dataproc.tf) and
# the KPI exports under kpis/; private, CMEK, versioned, every access logged.
resource "google_storage_bucket" "analytics" {
  name                        = "${var.project_id}-${var.name}"
  location                    = var.region
  force_destroy               = var.bucket_force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels
  versioning {
    enabled = true
  }
  encryption {
    default_kms_key_name = google_kms_crypto_key.this.id
  }
  logging {
    log_bucket        = google_storage_bucket.access_logs.name
    log_object_prefix = "analytics/"
  }
  lifecycle_rule {
    condition {
      matches_prefix = ["checkpoints/"]
      age            = var.checkpoint_retention_days
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      matches_prefix = ["kpis/"]
      age            = var.kpi_retention_days
    }
    action {
      type = "Delete"
    }
  }
  # versioning keeps overwritten objects; a week is enough to undo a mistake
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.agents]
}

# Dataproc's staging and temp bucket (job files, driver output, YARN history), instead of the
# per-region buckets Dataproc would otherwise create with default settings
resource "google_storage_bucket" "dataproc" {
  name                        = "${var.project_id}-${var.name}-dataproc"
  location                    = var.region
  force_destroy               = var.bucket_force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels
  versioning {
    enabled = true
  }
  encryption {
    default_kms_key_name = google_kms_crypto_key.this.id
  }
  logging {
    log_bucket        = google_storage_bucket.access_logs.name
    log_object_prefix = "dataproc/"
  }
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.agents]
}

# the two buckets' access logs
resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:the access-log bucket cannot log its own accesses into itself; its writes are Cloud Storage's log deliveries
  name                        = "${var.project_id}-${var.name}-access-logs"
  location                    = var.region
  force_destroy               = var.bucket_force_destroy
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels
  versioning {
    enabled = true
  }
  encryption {
    default_kms_key_name = google_kms_crypto_key.this.id
  }
  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.agents]
}

# Cloud Storage writes the access logs as this group (documented by Google for usage logs)
resource "google_storage_bucket_iam_member" "access_log_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}
