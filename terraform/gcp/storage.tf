# The two data buckets, hardened alike: private, CMEK, versioned, every access logged.
#   analytics  the Flink job's checkpoints/ and savepoints/ (state.checkpoints.dir, dataproc.tf) and
#              the KPI exports under kpis/
#   dataproc   Dataproc's staging and temp bucket (job files, driver output, YARN history), instead
#              of the per-region buckets Dataproc would otherwise create with default settings
locals {
  data_buckets = {
    analytics = {
      name = "${var.project_id}-${var.name}"
      # versioning keeps overwritten objects; a week is enough to undo a mistake
      expiry = [
        { prefixes = ["checkpoints/"], age = var.checkpoint_retention_days, noncurrent_days = null },
        { prefixes = ["kpis/"], age = var.kpi_retention_days, noncurrent_days = null },
        { prefixes = [], age = null, noncurrent_days = 7 },
      ]
    }
    dataproc = {
      name   = "${var.project_id}-${var.name}-dataproc"
      expiry = [{ prefixes = [], age = 90, noncurrent_days = null }]
    }
  }
}

resource "google_storage_bucket" "data" {
  for_each                    = local.data_buckets
  name                        = each.value.name
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
    log_object_prefix = "${each.key}/"
  }
  dynamic "lifecycle_rule" {
    for_each = each.value.expiry
    content {
      condition {
        matches_prefix             = lifecycle_rule.value.prefixes
        age                        = lifecycle_rule.value.age
        days_since_noncurrent_time = lifecycle_rule.value.noncurrent_days
      }
      action {
        type = "Delete"
      }
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.agents]
}

# the data buckets' access logs
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
