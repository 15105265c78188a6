#!/usr/bin/env bash
# The Flink image's roles (docker-compose.yml runs one container per role):
#   jobmanager    the cluster's jobmanager, REST API and web UI on 8081
#   taskmanager   a taskmanager; runs the job's Python functions with /opt/venv/bin/python
#   submit        submit analytics/job.py (once: skipped while a job of that name is running), then exit.
#                 It runs in the jobmanager's network namespace (compose: network_mode), because the job
#                 addresses the REST API as 127.0.0.1:$ANALYTICS_FLINK_REST_PORT, as on a local run.
# Environment: FLINK_JOBMANAGER_HOST (flink-jobmanager), KAFKA_BOOTSTRAP_SERVERS, ANALYTICS_* (docs/analytics.md).
set -euo pipefail
JOBMANAGER="${FLINK_JOBMANAGER_HOST:-flink-jobmanager}"
REST="http://127.0.0.1:${ANALYTICS_FLINK_REST_PORT:-8081}"
JOB_NAME=ecommerce-kpis

running_job() {
    python - "$REST" "$JOB_NAME" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(f"{sys.argv[1]}/jobs/overview", timeout=5) as response:
    jobs = json.load(response)["jobs"]
sys.exit(0 if any(j["name"] == sys.argv[2] and j["state"] in ("RUNNING", "CREATED", "RESTARTING")
                  for j in jobs) else 1)
PY
}

case "${1:-jobmanager}" in
    jobmanager)
        exec jobmanager.sh start-foreground -D "jobmanager.rpc.address=$JOBMANAGER" -D "rest.address=$JOBMANAGER" ;;
    taskmanager)
        exec taskmanager.sh start-foreground -D "jobmanager.rpc.address=$JOBMANAGER" ;;
    submit)
        for _ in $(seq 1 60); do
            python -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/overview', timeout=3)" "$REST" \
                2>/dev/null && break
            sleep 2
        done
        if running_job; then
            echo "[flink] $JOB_NAME is already running; nothing to submit"
            exit 0
        fi
        echo "[flink] submitting $JOB_NAME (analytics/job.py) to $REST"
        exec flink run --detached --python /opt/analytics/job.py ;;
    *)
        exec "$@" ;;
esac
