#!/usr/bin/env bash
# Run the platform locally, without Docker.
#
#   scripts/platform.sh up [--detach]   set up, start, seed, print where things are;
#                                       stays in the foreground unless --detach (Ctrl-C stops all)
#   scripts/platform.sh down [--all|--started]
#                                       stop the services, this stack's Prometheus and log shipper;
#                                       --all stops RabbitMQ/PostgreSQL/Redis/OpenSearch too;
#                                       --started only those of them that this run started
#                                       (STACK_STARTED_FILE, set by make test and make bench) and
#                                       no other stack uses, then fails if a process of this run
#                                       still listens on a port (scripts/leftovers.py)
#   scripts/platform.sh status
#   scripts/platform.sh ctl ARGS...     supervisorctl for this stack (make ctl ARGS="status"): the
#                                       configuration reads STACK_DIR and VENV, exported here
#
# Environment:
#   STACK_DIR    where data, logs and secrets live (default: var/)
#   STACK_VHOST  RabbitMQ vhost to run in (default: /), so a test stack and a
#                demo stack can share one broker
#   <SERVICE>_DATABASE_URL  PostgreSQL instead of the embedded SQLite files
#   ADMIN_EMAIL / ADMIN_PASSWORD  the first admin (password generated if unset)
#   GATEWAY_PORT (8080), REDIS_URL, JWT_SECRET (generated into STACK_DIR/secrets if unset)
#   ANALYTICS    "off" leaves Kafka, the sink and the Flink job stopped (they start when Java 17+
#                is present); KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_METRICS_PORT
#                (7071), ANALYTICS_FLINK_REST_PORT (8081), ANALYTICS_* (docs/analytics.md)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACK_DIR="$(mkdir -p "${STACK_DIR:-$ROOT/var}" && cd "${STACK_DIR:-$ROOT/var}" && pwd)"
export STACK_DIR
export VENV="$ROOT/.venv"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
CONF="$ROOT/scripts/supervisord.conf"
PY="$VENV/bin/python"

log() { echo "[platform] $*" >&2; }

configure() {
    export AMQP_URI="${AMQP_URI:-pyamqp://guest:guest@localhost:5672/${STACK_VHOST:-}}"
    export GATEWAY_PORT="${GATEWAY_PORT:-8080}"
    export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
    # breaker state, rate-limit counters and idempotency keys of one stack stay its own
    export REDIS_NAMESPACE="${REDIS_NAMESPACE:-${STACK_VHOST:-gateway}}"
    # logs go as JSON lines to the local shipper (Logstash in compose); metrics per service
    export LOGSTASH_HOST="${LOGSTASH_HOST:-127.0.0.1}" LOGSTASH_PORT="${LOGSTASH_PORT:-5000}"
    export METRICS_PORT_BASE="${METRICS_PORT_BASE:-9100}" PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
    export JWT_SECRET="${JWT_SECRET:-$(local_secret jwt_secret)}"
    export KAFKA_PORT="${KAFKA_PORT:-9092}" KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
    export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
    export ANALYTICS_FLINK_REST_PORT="${ANALYTICS_FLINK_REST_PORT:-8081}"
    local svc var
    for svc in $("$PY" -c 'from services.common.config import SERVICES; print(*SERVICES)'); do
        var="${svc^^}_DATABASE_URL"
        export "$var=${!var:-sqlite:///$STACK_DIR/data/$svc.db}"
    done
}

# A random secret kept under STACK_DIR/secrets: never a default anyone else has.
local_secret() {
    local file="$STACK_DIR/secrets/$1"
    if [ ! -s "$file" ]; then
        mkdir -p "$STACK_DIR/secrets"
        (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' > "$file")
    fi
    cat "$file"
}

supervisor_running() {
    [ -S "$STACK_DIR/supervisor.sock" ] && "$VENV/bin/supervisorctl" -c "$CONF" pid >/dev/null 2>&1
}

up() {
    local detach="${1:-}"
    bash "$ROOT/scripts/bootstrap.sh"
    configure
    bash "$ROOT/scripts/infra.sh" start rabbitmq redis
    if [ -n "${STACK_VHOST:-}" ]; then
        rabbitmqctl -q add_vhost "$STACK_VHOST" 2>/dev/null || true
        rabbitmqctl -q set_permissions -p "$STACK_VHOST" guest '.*' '.*' '.*' >/dev/null
    fi
    # the log shipper must listen before the services start logging
    bash "$ROOT/scripts/observability.sh" start search shipper
    if env | grep -q '_DATABASE_URL=postgresql'; then
        bash "$ROOT/scripts/infra.sh" start postgres
    fi
    local analytics=""
    if [ "${ANALYTICS:-on}" = off ]; then
        log "ANALYTICS=off: Kafka, the sink and the Flink job stay stopped"
    elif bash "$ROOT/scripts/kafka.sh" check; then
        analytics=1
        bash "$ROOT/scripts/analytics.sh" setup
        # Prometheus scrapes the broker, the sink and analytics only when they run
        export KAFKA_METRICS_PORT="${KAFKA_METRICS_PORT:-7071}"
    else
        log "analytics is off (see above); the rest of the platform starts without it"
    fi
    mkdir -p "$STACK_DIR/data" "$STACK_DIR/log" "$STACK_DIR/secrets"
    log "applying migrations"
    "$PY" -m services.common.migrations
    if supervisor_running; then
        log "services already running; starting any that stopped"
        "$VENV/bin/supervisorctl" -c "$CONF" start 'services:*' gateway >/dev/null || true
    else
        log "starting services under supervisord"
        "$VENV/bin/supervisord" -c "$CONF"
    fi
    "$PY" "$ROOT/scripts/wait_ready.py"
    if [ -n "$analytics" ]; then
        log "starting Kafka, the Kafka sink, analytics and the Flink job"
        "$VENV/bin/supervisorctl" -c "$CONF" start 'streaming:*' >/dev/null || true
        "$PY" "$ROOT/scripts/wait_analytics.py"
    fi
    ensure_admin
    "$PY" "$ROOT/scripts/seed_demo.py"
    wait_gateway
    bash "$ROOT/scripts/observability.sh" start prometheus
    summary
    if [ "$detach" != "--detach" ]; then
        trap 'echo; down --all; exit 0' INT TERM
        log "running; press Ctrl-C (or run 'make stop' elsewhere) to stop everything"
        while supervisor_running; do sleep 1; done
    fi
}

ensure_admin() {
    export ADMIN_EMAIL="${ADMIN_EMAIL:-admin@example.com}"
    if [ -z "${ADMIN_PASSWORD:-}" ]; then
        local secret="$STACK_DIR/secrets/admin_password"
        if [ ! -s "$secret" ]; then
            (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(18))' > "$secret")
        fi
        ADMIN_PASSWORD="$(cat "$secret")"
        export ADMIN_PASSWORD
    fi
    "$PY" -m services.customers.bootstrap_admin >/dev/null
}

wait_gateway() {
    local _
    for _ in $(seq 1 60); do
        curl -fsS "http://localhost:$GATEWAY_PORT/ready" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    log "the gateway did not become ready on port $GATEWAY_PORT; see $STACK_DIR/log/gateway.log"
    return 1
}

summary() {
    cat <<MSG

  The platform is up.
    Gateway         http://localhost:$GATEWAY_PORT   (API docs: http://localhost:$GATEWAY_PORT/docs)
    RabbitMQ        amqp://guest:guest@localhost:5672/${STACK_VHOST:-}   management: http://localhost:15672 (guest/guest)
    Services        $("$VENV/bin/supervisorctl" -c "$CONF" status | awk '{print $1 "=" $2}' | sed 's/services://' | tr '\n' ' ')
    Data            $STACK_DIR/data (SQLite per service unless <SERVICE>_DATABASE_URL is set)
    Logs            $STACK_DIR/log/<service>.log
    Admin           $ADMIN_EMAIL (password: ADMIN_PASSWORD, or generated into $STACK_DIR/secrets/admin_password)
    Log search      make logs ID=<X-Request-ID or order id>   (OpenSearch http://127.0.0.1:9200)
    Prometheus      http://127.0.0.1:$PROMETHEUS_PORT   (service /metrics on ports $((METRICS_PORT_BASE+1))-$((METRICS_PORT_BASE+11)))
    Analytics       $(analytics_summary)
    Processes       make ctl ARGS="status"   (supervisorctl for this stack, from any shell)
    Dead letters    .venv/bin/python -m services.common.dlq list
    Python shell    AMQP_URI=$AMQP_URI .venv/bin/python -m services.common.nameko_cli shell --config config.yml
                    >>> n.rpc.orders.create_order(customer_id=1, items=[{"product_id": 1, "quantity": 1}])

MSG
}

analytics_summary() {
    if [ -n "${KAFKA_METRICS_PORT:-}" ]; then
        echo "Kafka $KAFKA_BOOTSTRAP_SERVERS, Flink REST http://127.0.0.1:$ANALYTICS_FLINK_REST_PORT, KPIs: GET /api/analytics/kpis (admin)"
    else
        echo "off (needs Java 17+: scripts/kafka.sh check)"
    fi
}

down() {
    configure
    if supervisor_running; then
        log "stopping services"
        "$VENV/bin/supervisorctl" -c "$CONF" shutdown >/dev/null || true
        local pid_file="$STACK_DIR/supervisord.pid" _
        for _ in $(seq 1 60); do
            if ! { [ -e "$pid_file" ] && kill -0 "$(cat "$pid_file" 2>/dev/null)" 2>/dev/null; }; then break; fi
            sleep 0.5
        done
    fi
    bash "$ROOT/scripts/observability.sh" stop prometheus shipper
    case "${1:-}" in
        --all)
            bash "$ROOT/scripts/observability.sh" stop
            bash "$ROOT/scripts/infra.sh" stop rabbitmq postgres redis
            ;;
        --started) stop_started ;;
    esac
}

# The shared servers this run started, newest first, unless another stack is connected to one by
# now: on a shared machine that one has become the other stack's (it is named, not stopped). A
# server that was running when the run began stays, even if a test restarted it meanwhile
# (tests/e2e/test_messaging.py restarts RabbitMQ): what counts is a server's first record.
stop_started() {
    local file="${STACK_STARTED_FILE:-}" state component ports port clients checks=()
    [ -n "$file" ] || { log "down --started: STACK_STARTED_FILE is not set"; return 2; }
    while read -r state component; do
        case "$component" in
            rabbitmq) ports="5672 4369" ;;  # and the Erlang port mapper it starts
            postgres) ports=5432 ;;
            redis) ports=6379 ;;
            search) ports="${SEARCH_PORT:-9200}" ;;
            shipper|prometheus) continue ;;  # this stack's own: stopped above
            *) log "unknown server '$component' in $file"; continue ;;
        esac
        if [ "$state" = found ]; then
            for port in $ports; do checks+=(--found-port "$port"); done
            continue
        fi
        if clients=$("$PY" "$ROOT/scripts/leftovers.py" "$file" --in-use "${ports%% *}" </dev/null); then
            log "$component: started by this run, but another stack uses it ($clients): left running"
            continue
        fi
        if [ "$component" = search ]; then
            bash "$ROOT/scripts/observability.sh" stop search </dev/null
        else
            bash "$ROOT/scripts/infra.sh" stop "$component" </dev/null
        fi
        for port in $ports; do checks+=(--port "$port"); done
    done < <(awk '!seen[$2]++' "$file" 2>/dev/null | tac)
    if ! "$PY" "$ROOT/scripts/leftovers.py" "$file" "${checks[@]}" >&2; then
        log "processes this run started still hold ports (above): a next make run could not start"
        return 1
    fi
    log "nothing this run started still listens"
}

status() {
    configure
    bash "$ROOT/scripts/infra.sh" status
    bash "$ROOT/scripts/observability.sh" status
    if supervisor_running; then
        "$VENV/bin/supervisorctl" -c "$CONF" status
    else
        echo "services: stopped"
    fi
}

ctl() {
    [ -x "$VENV/bin/supervisorctl" ] || { log "no $VENV yet: run make run first"; exit 3; }
    supervisor_running || { log "the stack in $STACK_DIR is not running (make run starts it)"; exit 3; }
    [ $# -gt 0 ] || set -- status
    exec "$VENV/bin/supervisorctl" -c "$CONF" "$@"
}

case "${1:-}" in
    up) up "${2:-}" ;;
    ctl) shift; ctl "$@" ;;
    down) down "${2:-}" ;;
    status) status ;;
    *) echo "usage: scripts/platform.sh up [--detach] | down [--all] | status | ctl ARGS..." >&2; exit 2 ;;
esac
