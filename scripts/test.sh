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
bash scripts/infra.sh start rabbitmq postgres

echo "[test] ruff"
.venv/bin/ruff check .

export STACK_DIR="$ROOT/var/e2e" STACK_VHOST=e2e
# fast timers so a saga reaches SHIPPED and DELIVERED within seconds
export SHIPPING_SHIP_AFTER_SECONDS=1 SHIPPING_DELIVER_AFTER_SECONDS=2 SHIPPING_TICK_SECONDS=0.2
export PAYMENT_LATENCY_MS=400 EVENT_RETRY_BASE_SECONDS=0.1 ADMIN_PASSWORD="e2e-$(date +%s%N)"
bash scripts/platform.sh down >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
rabbitmqctl -q delete_vhost e2e >/dev/null 2>&1 || true
trap 'bash scripts/platform.sh down >/dev/null 2>&1 || true' EXIT
bash scripts/platform.sh up --detach

echo "[test] pytest"
.venv/bin/python -m pytest -p no:cacheprovider -q "$@"
