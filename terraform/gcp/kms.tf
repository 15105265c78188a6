# One customer-managed key for the buckets and the cluster's persistent disks, rotated every 90 days.
resource "google_kms_key_ring" "this" {
  name       = var.name
  location   = var.region
  depends_on = [google_project_service.this]
}

resource "google_kms_crypto_key" "this" {
  name            = var.name
  key_ring        = google_kms_key_ring.this.id
  rotation_period = "7776000s"
  lifecycle {
    # destroying the key makes every checkpoint and KPI export unreadable
    prevent_destroy = true
  }
}

data "google_storage_project_service_account" "this" {}

# the Google service agents that encrypt for the project: Cloud Storage (objects), Compute Engine
# (the cluster's disks) and Dataproc (the cluster)
resource "google_kms_crypto_key_iam_member" "agents" {
  for_each = toset([
    "serviceAccount:${data.google_storage_project_service_account.this.email_address}",
    "serviceAccount:service-${data.google_project.this.number}@compute-system.iam.gserviceaccount.com",
    "serviceAccount:service-${data.google_project.this.number}@dataproc-accounts.iam.gserviceaccount.com",
  ])
  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value
}
