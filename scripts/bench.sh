#!/usr/bin/env bash
# make bench: load-test a local stack against its own floors (docs/performance.md).
#
#   scripts/bench.sh [python -m bench flags]     e.g. --duration 120 --users 80 --profile
#
# Uses the stack answering at GATEWAY_URL. When none answers it starts the bench stack, fresh
# (data in var/bench, vhost "bench", gateway on 18180, Redis db 2, no rate limits, an instant
# courier so "final state" measures the platform rather than a simulated delay, analytics off), and
# stops it at the end unless BENCH_KEEP_STACK=1. Results: bench/results/<timestamp>.{json,md,png}
# and the summary block of docs/performance.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT"

log() { echo "[bench] $*" >&2; }

bash scripts/bootstrap.sh
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        log "installing wrk (Debian package) for the single-endpoint floors"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    else
        log "wrk is missing: sudo apt-get install -y wrk"
        exit 3
    fi
fi

# The bench stack's settings; each can be overridden from the environment.
DEFAULT_STACK_DIR="$ROOT/var/bench"
export STACK_DIR="${STACK_DIR:-$DEFAULT_STACK_DIR}" STACK_VHOST="${STACK_VHOST:-bench}"
export GATEWAY_PORT="${GATEWAY_PORT:-18180}"
export GATEWAY_URL="${GATEWAY_URL:-http://localhost:$GATEWAY_PORT}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/2}" REDIS_NAMESPACE="${REDIS_NAMESPACE:-bench}"
export RATE_LIMIT_ENABLED="${RATE_LIMIT_ENABLED:-false}"
export METRICS_PORT_BASE="${METRICS_PORT_BASE:-19200}" PROMETHEUS_PORT="${PROMETHEUS_PORT:-19290}"
# the log shipper on a port of its own: 5000 may be another checkout's (scripts/observability.sh)
export LOGSTASH_PORT="${LOGSTASH_PORT:-15140}"
export SHIPPING_SHIP_AFTER_SECONDS="${SHIPPING_SHIP_AFTER_SECONDS:-0}"
export SHIPPING_DELIVER_AFTER_SECONDS="${SHIPPING_DELIVER_AFTER_SECONDS:-0}"
export SHIPPING_TICK_SECONDS="${SHIPPING_TICK_SECONDS:-0.1}"
# no Kafka, sink and Flink job (JVMs) beside the order platform: the targets are the order path's
# (ANALYTICS=on runs them too, on ports of the bench stack's own)
export ANALYTICS="${ANALYTICS:-off}"
export KAFKA_PORT="${KAFKA_PORT:-19092}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
export KAFKA_METRICS_PORT="${KAFKA_METRICS_PORT:-19071}" ANALYTICS_FLINK_REST_PORT="${ANALYTICS_FLINK_REST_PORT:-18081}"

started=""
if ! curl -fsS -m 5 "$GATEWAY_URL/ready" >/dev/null 2>&1; then
    # what this run starts carries STACK_STARTED_FILE, and is stopped again at exit (scripts/platform.sh)
    STACK_STARTED_FILE="$(mkdir -p var && mktemp "$ROOT/var/bench-started.XXXXXX")"
    export STACK_STARTED_FILE
    started=1
    if [ "${BENCH_KEEP_STACK:-0}" != 1 ]; then
        stop_started() {
            local rc=$?
            log "stopping the stack it started and the servers it started (BENCH_KEEP_STACK=1 keeps them)"
            bash scripts/platform.sh down --started >/dev/null || rc=1
            rm -f "$STACK_STARTED_FILE"
            exit "$rc"
        }
        trap stop_started EXIT
    fi
    if [ "$STACK_DIR" = "$DEFAULT_STACK_DIR" ] && [ "$STACK_VHOST" = bench ]; then
        # every run starts from the same empty state: measured the same way every time
        log "no stack at $GATEWAY_URL: starting a fresh bench stack ($STACK_DIR, vhost bench)"
        bash scripts/platform.sh down >/dev/null 2>&1 || true
        rm -rf "$STACK_DIR"
        bash scripts/infra.sh start rabbitmq redis
        rabbitmqctl -q delete_vhost bench >/dev/null 2>&1 || true
        [ "$REDIS_URL" = "redis://127.0.0.1:6379/2" ] && redis-cli -n 2 flushdb >/dev/null
    else
        log "no stack at $GATEWAY_URL: starting one in $STACK_DIR (vhost $STACK_VHOST)"
    fi
    bash scripts/platform.sh up --detach
fi
[ -n "$started" ] || log "using the stack already answering at $GATEWAY_URL"
.venv/bin/python -m bench "$@"
