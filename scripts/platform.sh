#!/usr/bin/env bash
# Run the platform locally, without Docker.
#
#   scripts/platform.sh up [--detach]   set up, start, seed, print where things are;
#                                       stays in the foreground unless --detach (Ctrl-C stops all)
#   scripts/platform.sh down [--all]    stop the services; --all stops RabbitMQ/PostgreSQL too
#   scripts/platform.sh status
#
# Environment:
#   STACK_DIR    where data, logs and secrets live (default: var/)
#   STACK_VHOST  RabbitMQ vhost to run in (default: /), so a test stack and a
#                demo stack can share one broker
#   <SERVICE>_DATABASE_URL  PostgreSQL instead of the embedded SQLite files
#   ADMIN_EMAIL / ADMIN_PASSWORD  the first admin (password generated if unset)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export STACK_DIR="$(mkdir -p "${STACK_DIR:-$ROOT/var}" && cd "${STACK_DIR:-$ROOT/var}" && pwd)"
export VENV="$ROOT/.venv"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# eventlet announces its own deprecation on every import; nameko 2.14 needs it
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning}"
CONF="$ROOT/scripts/supervisord.conf"
PY="$VENV/bin/python"

log() { echo "[platform] $*" >&2; }

configure() {
    export AMQP_URI="${AMQP_URI:-pyamqp://guest:guest@localhost:5672/${STACK_VHOST:-}}"
    local svc var
    for svc in $("$PY" -c 'from services.common.config import SERVICES; print(*SERVICES)'); do
        var="${svc^^}_DATABASE_URL"
        export "$var=${!var:-sqlite:///$STACK_DIR/data/$svc.db}"
    done
}

supervisor_running() {
    [ -S "$STACK_DIR/supervisor.sock" ] && "$VENV/bin/supervisorctl" -c "$CONF" pid >/dev/null 2>&1
}

up() {
    local detach="${1:-}"
    bash "$ROOT/scripts/bootstrap.sh"
    configure
    bash "$ROOT/scripts/infra.sh" start rabbitmq
    if [ -n "${STACK_VHOST:-}" ]; then
        rabbitmqctl -q add_vhost "$STACK_VHOST" 2>/dev/null || true
        rabbitmqctl -q set_permissions -p "$STACK_VHOST" guest '.*' '.*' '.*' >/dev/null
    fi
    if env | grep -q '_DATABASE_URL=postgresql'; then
        bash "$ROOT/scripts/infra.sh" start postgres
    fi
    mkdir -p "$STACK_DIR/data" "$STACK_DIR/log" "$STACK_DIR/secrets"
    log "applying migrations"
    "$PY" -m services.common.migrations
    if supervisor_running; then
        log "services already running; starting any that stopped"
        "$VENV/bin/supervisorctl" -c "$CONF" start all >/dev/null || true
    else
        log "starting services under supervisord"
        "$VENV/bin/supervisord" -c "$CONF"
    fi
    "$PY" "$ROOT/scripts/wait_ready.py"
    ensure_admin
    "$PY" "$ROOT/scripts/seed_demo.py"
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

summary() {
    cat <<MSG

  The platform is up.
    RabbitMQ        amqp://guest:guest@localhost:5672/${STACK_VHOST:-}   management: http://localhost:15672 (guest/guest)
    Services        $("$VENV/bin/supervisorctl" -c "$CONF" status | awk '{print $1 "=" $2}' | sed 's/services://' | tr '\n' ' ')
    Data            $STACK_DIR/data (SQLite per service unless <SERVICE>_DATABASE_URL is set)
    Logs            $STACK_DIR/log/<service>.log
    Admin           $ADMIN_EMAIL (password: ADMIN_PASSWORD, or generated into $STACK_DIR/secrets/admin_password)
    Dead letters    .venv/bin/python -m services.common.dlq list
    Python shell    AMQP_URI=$AMQP_URI .venv/bin/nameko shell --config config.yml
                    >>> n.rpc.orders.create_order(customer_id=1, items=[{"product_id": 1, "quantity": 1}])

MSG
}

down() {
    configure
    if supervisor_running; then
        log "stopping services"
        "$VENV/bin/supervisorctl" -c "$CONF" shutdown >/dev/null || true
        local pid_file="$STACK_DIR/supervisord.pid" i
        for i in $(seq 1 60); do
            [ -e "$pid_file" ] && kill -0 "$(cat "$pid_file" 2>/dev/null)" 2>/dev/null || break
            sleep 0.5
        done
    fi
    if [ "${1:-}" = "--all" ]; then
        bash "$ROOT/scripts/infra.sh" stop rabbitmq postgres redis
    fi
}

status() {
    configure
    bash "$ROOT/scripts/infra.sh" status
    if supervisor_running; then
        "$VENV/bin/supervisorctl" -c "$CONF" status
    else
        echo "services: stopped"
    fi
}

case "${1:-}" in
    up) up "${2:-}" ;;
    down) down "${2:-}" ;;
    status) status ;;
    *) echo "usage: scripts/platform.sh up [--detach] | down [--all] | status" >&2; exit 2 ;;
esac
