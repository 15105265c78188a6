#!/usr/bin/env bash
# The one test command (make test): installs and starts what the tests need,
# lints, then runs unit, integration and end-to-end tests in one pytest run.
# The end-to-end tests drive a real stack started here in its own RabbitMQ
# vhost and data directory, so a running demo stack is left alone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT"

bash scripts/bootstrap.sh
# Nothing left behind: every process this run starts inherits STACK_STARTED_FILE, and the servers
# it really starts are named in it; at exit the stack and those servers are stopped, and make test
# fails if a process of this run still listens on a port (scripts/platform.sh down --started).
mkdir -p var
# the test stack (set before the trap, so that its stop never reaches a `make run` stack in var/)
export STACK_DIR="$ROOT/var/e2e" STACK_VHOST=e2e
STACK_STARTED_FILE="$(mktemp "$ROOT/var/test-started.XXXXXX")"
export STACK_STARTED_FILE
finish() {
    local rc=$?
    echo "[test] stopping what this run started"
    bash scripts/platform.sh down --started >/dev/null || rc=1
    rm -f "$STACK_STARTED_FILE"
    exit "$rc"
}
trap finish EXIT
# The deployment validators build from source the first time (Go, several minutes): in the
# background while the rest installs, and done before the timing-sensitive tests start.
bash scripts/deploy_tools.sh >var/deploy_tools.log 2>&1 &
deploy_tools=$!
bash scripts/infra.sh start rabbitmq postgres redis
# the images tests/containers runs with compose: installs and starts Docker when missing
bash scripts/images.sh

echo "[test] ruff"
.venv/bin/ruff check .

# fast timers so a saga reaches SHIPPED and DELIVERED within seconds
export SHIPPING_SHIP_AFTER_SECONDS=1 SHIPPING_DELIVER_AFTER_SECONDS=2 SHIPPING_TICK_SECONDS=0.2
ADMIN_PASSWORD="e2e-$(date +%s%N)"
export PAYMENT_LATENCY_MS=400 EVENT_RETRY_BASE_SECONDS=0.1 ADMIN_PASSWORD
# the gateway on its own port and Redis database, so a running `make run` is left alone;
# limits small enough for resilience_test.py to reach them in seconds; /auth's is 10 a window because
# a login is an argon2 verification (about 200 ms of CPU): 30 in 5 s did not fit a busy 2-core machine
export GATEWAY_PORT=18080 GATEWAY_URL=http://localhost:18080 REDIS_URL=redis://127.0.0.1:6379/1 REDIS_NAMESPACE=e2e
export RATE_LIMIT_API="100 per 5 seconds" RATE_LIMIT_AUTH="10 per 5 seconds"
export BREAKER_FAIL_MAX=5 BREAKER_RESET_TIMEOUT=5 RPC_TIMEOUT=5
# the e2e stack's own metrics and Prometheus ports; a running `make run` keeps 9101-9111 and 9090
export METRICS_PORT_BASE=19100 PROMETHEUS_PORT=19090
# the e2e stack's own log shipper: make run's 5000 stays free (scripts/observability.sh)
export LOGSTASH_PORT=15040
# analytics (tests/e2e/test_analytics.py): the e2e stack's own Kafka and Flink ports, and
# 10-second windows with 3-second checkpoints so KPI windows close within seconds
export KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093 KAFKA_METRICS_PORT=17071 ANALYTICS_FLINK_REST_PORT=18081
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092
export ANALYTICS_WINDOW_SECONDS=10 ANALYTICS_CHECKPOINT_SECONDS=3
bash scripts/observability.sh install
bash scripts/analytics.sh setup
# Bruno's CLI for tests/e2e/test_bruno.py (pinned, cached; npm from Debian when missing)
bash scripts/bruno.sh install
if ! wait "$deploy_tools"; then
    cat var/deploy_tools.log >&2
    exit 1
fi
echo "[test] deployment files, offline (scripts/validate_deploy.sh)"
bash scripts/validate_deploy.sh
bash scripts/platform.sh down >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
rabbitmqctl -q delete_vhost e2e >/dev/null 2>&1 || true
redis-cli -n 1 flushdb >/dev/null
bash scripts/platform.sh up --detach

echo "[test] pytest"
.venv/bin/python -m pytest -p no:cacheprovider -q "$@"

echo "[test] resilience_test.py"
.venv/bin/python resilience_test.py --base-url "$GATEWAY_URL"
