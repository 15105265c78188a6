#!/usr/bin/env bash
# make bench: load-test a local stack, judged against the targets in docs/performance.md.
#
#   scripts/bench.sh [python -m bench flags]     e.g. --saga-rate 50 --saga-seconds 60 --profile
#
# Installs what is missing first: the venv, wrk (Debian) and vegeta (go install, cached under
# ~/.cache/ecommerce-platform/tools; VEGETA=/path/to/vegeta uses another).
# Uses the stack answering at GATEWAY_URL. When none answers it starts the bench stack, fresh
# (data in var/bench, vhost "bench", gateway on 18180, Redis db 2, no rate limits, an instant
# courier so "final state" measures the platform rather than a simulated delay, analytics off), and
# stops it at the end unless BENCH_KEEP_STACK=1. BENCH_DATABASE=postgresql runs that stack on fresh
# PostgreSQL databases (bench_<service>) instead of SQLite files.
# Results: bench/results/<timestamp>.{json,md,png} and the summary block of docs/performance.md. BENCH_START_STACK=0 never starts a stack (python -m bench
# then exits 2 when none answers).
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

# vegeta, the constant-rate load generator (bench/vegeta.py), built once into the tools cache that
# scripts/deploy_tools.sh keeps its Go tools in (same layout: go/<tool>-<version>, gomod/)
VEGETA_VERSION=v12.13.0
TOOLS="${ECOMMERCE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform/tools}"
VEGETA_DIR="$TOOLS/go/vegeta-$VEGETA_VERSION"
if [ -z "${VEGETA:-}" ] && [ ! -x "$VEGETA_DIR/vegeta" ]; then
    command -v go >/dev/null 2>&1 || { log "go is missing (1.22 or newer; Debian: apt-get install golang)"; exit 3; }
    log "building vegeta $VEGETA_VERSION (go install github.com/tsenart/vegeta/v12@$VEGETA_VERSION, once)"
    rm -rf "$VEGETA_DIR.tmp" && mkdir -p "$VEGETA_DIR.tmp"
    GOBIN="$VEGETA_DIR.tmp" GOMODCACHE="$TOOLS/gomod" GOTOOLCHAIN=local nice -n 10 \
        go install -trimpath -ldflags="-s -w" "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" >&2 \
        || { log "go install of vegeta failed (see above)"; exit 1; }
    rm -rf "$VEGETA_DIR" && mv "$VEGETA_DIR.tmp" "$VEGETA_DIR"
fi
export VEGETA="${VEGETA:-$VEGETA_DIR/vegeta}"

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
# (not the test stack's 19092, 19093, 17071, 18081: scripts/test.sh)
export KAFKA_PORT="${KAFKA_PORT:-19192}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19193}"
export KAFKA_METRICS_PORT="${KAFKA_METRICS_PORT:-19171}" ANALYTICS_FLINK_REST_PORT="${ANALYTICS_FLINK_REST_PORT:-18181}"

started=""
# BENCH_START_STACK=0: measure the stack at GATEWAY_URL or fail, never start one (the smoke test)
if [ "${BENCH_START_STACK:-1}" != 0 ] && ! curl -fsS -m 5 "$GATEWAY_URL/ready" >/dev/null 2>&1; then
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
        if [ "${BENCH_DATABASE:-sqlite}" = postgresql ]; then
            # the same stack on PostgreSQL: a fresh bench_<service> database each
            bash scripts/infra.sh start postgres
            for svc in $(.venv/bin/python -c 'from services.common.config import SERVICES; print(*SERVICES)'); do
                bash scripts/infra.sh pg-dropdb "bench_$svc" 2>/dev/null
                export "${svc^^}_DATABASE_URL=$(bash scripts/infra.sh pg-url "bench_$svc" 2>/dev/null)"
            done
        fi
    else
        log "no stack at $GATEWAY_URL: starting one in $STACK_DIR (vhost $STACK_VHOST)"
    fi
    bash scripts/platform.sh up --detach
fi
[ -n "$started" ] || log "measuring the stack at $GATEWAY_URL"
.venv/bin/python -m bench "$@"
