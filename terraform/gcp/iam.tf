# Two service accounts, each with only what it uses, and no key: the cluster's VMs run as one, the
# job submitter is impersonated (var.job_submitters), never downloaded as a key file.

# ---- the cluster's VMs (Dataproc's agent, YARN, Flink)
resource "google_service_account" "cluster" {
  account_id   = "${var.name}-vm"
  display_name = "Dataproc Flink cluster VMs (${var.name})"
  depends_on   = [google_project_service.this]
}

# Google's Dataproc Worker role without its project-wide Cloud Storage permissions: the VMs reach
# only this stack's two buckets (bucket-level grants below)
resource "google_project_iam_custom_role" "cluster" {
  role_id     = replace("${var.name}_dataproc_vm", "-", "_")
  title       = "Dataproc VM (${var.name})"
  description = "roles/dataproc.worker less its storage permissions; the buckets are granted one by one"
  permissions = [
    "dataproc.agents.create",
    "dataproc.agents.delete",
    "dataproc.agents.get",
    "dataproc.agents.list",
    "dataproc.agents.update",
    "dataproc.tasks.lease",
    "dataproc.tasks.listInvalidatedLeases",
    "dataproc.tasks.reportStatus",
    "logging.logEntries.create",
    "monitoring.metricDescriptors.create",
    "monitoring.metricDescriptors.get",
    "monitoring.metricDescriptors.list",
    "monitoring.monitoredResourceDescriptors.get",
    "monitoring.monitoredResourceDescriptors.list",
    "monitoring.timeSeries.create",
  ]
}

resource "google_project_iam_member" "cluster" {
  project = var.project_id
  role    = google_project_iam_custom_role.cluster.id
  member  = "serviceAccount:${google_service_account.cluster.email}"
}

# checkpoints, savepoints and KPI exports: read, write, delete (Flink prunes old checkpoints)
resource "google_storage_bucket_iam_member" "cluster_analytics" {
  bucket = google_storage_bucket.data["analytics"].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.cluster.email}"
}

resource "google_storage_bucket_iam_member" "cluster_dataproc" {
  bucket = google_storage_bucket.data["dataproc"].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.cluster.email}"
}

# ---- the job submitter (CI or an operator): submits and cancels jobs on this cluster, uploads
# the job's files to the staging bucket, reads the driver's output there; nothing else
resource "google_service_account" "submitter" {
  account_id   = "${var.name}-submit"
  display_name = "Flink job submitter (${var.name})"
  depends_on   = [google_project_service.this]
}

resource "google_project_iam_custom_role" "submitter" {
  role_id     = replace("${var.name}_job_submitter", "-", "_")
  title       = "Dataproc job submitter (${var.name})"
  description = "Submit, watch and cancel Dataproc jobs"
  permissions = [
    "dataproc.clusters.get",
    "dataproc.clusters.use",
    "dataproc.jobs.cancel",
    "dataproc.jobs.create",
    "dataproc.jobs.get",
    "dataproc.jobs.list",
  ]
}

# project-wide, as Dataproc grants job permissions (an IAM condition on a job's name cannot
# follow a job id that is made at submission); the role holds nothing but these six
resource "google_project_iam_member" "submitter" {
  project = var.project_id
  role    = google_project_iam_custom_role.submitter.id
  member  = "serviceAccount:${google_service_account.submitter.email}"
}

resource "google_storage_bucket_iam_member" "submitter_dataproc" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])
  bucket   = google_storage_bucket.data["dataproc"].name
  role     = each.value
  member   = "serviceAccount:${google_service_account.submitter.email}"
}

# who may act as the submitter (short-lived tokens by impersonation)
resource "google_service_account_iam_member" "submitters" {
  for_each           = toset(var.job_submitters)
  service_account_id = google_service_account.submitter.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}
