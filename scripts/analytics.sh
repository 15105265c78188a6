#!/usr/bin/env bash
# The PyFlink KPI job (analytics/job.py) on a local mini-cluster: Flink runs inside this job's JVM.
#
#   scripts/analytics.sh setup    the job's virtualenv (apache-flink, pinned in analytics/requirements.txt)
#                                 and the Kafka connector jar matched to it, both cached; idempotent
#   scripts/analytics.sh run      create missing topics, then run the job in the foreground, restoring
#                                 the newest retained checkpoint if there is one (what supervisord runs)
#   scripts/analytics.sh replay   forget the checkpoints: the next run recomputes every window from the
#                                 start of the topics (stop the job first)
#   scripts/analytics.sh status   the job's state and its last checkpoint, from Flink's REST API
#   scripts/analytics.sh kpis [N] the N (5) newest KPI windows, from the analytics service (AMQP_URI)
#
# Environment: STACK_DIR (state in $STACK_DIR/flink), KAFKA_BOOTSTRAP_SERVERS, ANALYTICS_* (docs/analytics.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FLINK_VERSION=2.2.1
# the connector release built for Flink 2.2 (5.0.0-2.2); there is none for 2.3 yet
CONNECTOR_VERSION=5.0.0-2.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform"
FLINK_VENV="$CACHE/flink/venv-$FLINK_VERSION"
CONNECTOR_JAR="$CACHE/flink/flink-sql-connector-kafka-$CONNECTOR_VERSION.jar"
REQUIREMENTS="$ROOT/analytics/requirements.txt"
STACK_DIR="${STACK_DIR:-$ROOT/var}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$CACHE/pip}"

log() { echo "[analytics] $*" >&2; }

setup() {
    bash "$ROOT/scripts/kafka.sh" check
    local want
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    if [ "$(cat "$FLINK_VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
        log "installing apache-flink $FLINK_VERSION into $FLINK_VENV (about 300 MB the first time)"
        rm -rf "$FLINK_VENV"
        python3.11 -m venv "$FLINK_VENV"
        "$FLINK_VENV/bin/pip" install -q --upgrade pip >&2
        "$FLINK_VENV/bin/pip" install -q -r "$REQUIREMENTS" >&2
        echo "$want" > "$FLINK_VENV/.requirements.sha256"
    fi
    if [ ! -s "$CONNECTOR_JAR" ]; then
        log "resolving org.apache.flink:flink-sql-connector-kafka:$CONNECTOR_VERSION from Maven Central"
        mkdir -p "$(dirname "$CONNECTOR_JAR")"
        mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" dependency:copy \
            -Dartifact="org.apache.flink:flink-sql-connector-kafka:$CONNECTOR_VERSION" \
            -DoutputDirectory="$(dirname "$CONNECTOR_JAR")" >&2
    fi
    bash "$ROOT/scripts/kafka.sh" fetch
}

run() {
    setup
    export ANALYTICS_STATE_DIR="${ANALYTICS_STATE_DIR:-$STACK_DIR/flink}"
    export ANALYTICS_KAFKA_CONNECTOR_JAR="$CONNECTOR_JAR"
    # Flink's and the Python functions' logs to stdout instead of a file inside the venv
    export LOG4J_PROPERTIES="$ROOT/analytics/log4j2.properties"
    # the topics are created by their owner's code, with their partitions and retention
    PYTHONPATH="$ROOT" "$ROOT/.venv/bin/python" -m services.kafka_sink.topics
    exec "$FLINK_VENV/bin/python" "$ROOT/analytics/job.py"
}

replay() {
    local dir="${ANALYTICS_STATE_DIR:-$STACK_DIR/flink}/checkpoints"
    rm -rf "$dir"
    log "checkpoints removed ($dir): the next run reads the topics from their start"
}

status() {
    "$ROOT/.venv/bin/python" - "${ANALYTICS_FLINK_REST_PORT:-8081}" <<'PY'
import sys
import requests
base = f"http://127.0.0.1:{sys.argv[1]}"
try:
    jobs = requests.get(f"{base}/jobs/overview", timeout=5).json()["jobs"]
except requests.RequestException:
    print(f"flink: not answering on {base}")
    sys.exit(0)
for job in jobs:
    checkpoints = requests.get(f"{base}/jobs/{job['jid']}/checkpoints", timeout=5).json()
    latest = (checkpoints.get("latest") or {}).get("completed") or {}
    print(f"flink: {job['name']} {job['state']} (job {job['jid']}); "
          f"checkpoints completed={checkpoints['counts']['completed']} latest={latest.get('external_path')}")
PY
}

kpis() {
    PYTHONPATH="$ROOT" "$ROOT/.venv/bin/python" - "${1:-5}" <<'PY'
import json
import sys
from nameko.standalone.rpc import ClusterRpcProxy
from services.common.config import load_config
with ClusterRpcProxy(load_config(), timeout=10) as rpc:
    for window in rpc.analytics.get_kpis(limit=int(sys.argv[1]))["windows"]:
        print(json.dumps(window, sort_keys=True))
PY
}

case "${1:-}" in
    setup) setup ;;
    run) run ;;
    replay) replay ;;
    status) status ;;
    kpis) kpis "${2:-5}" ;;
    *) echo "usage: scripts/analytics.sh setup|run|replay|status|kpis [N]" >&2; exit 2 ;;
esac
