"""Benchmark of the analytics path on a running stack (not a test): sink throughput and KPI freshness.

    STACK_DIR=... STACK_VHOST=... KAFKA_BOOTSTRAP_SERVERS=... GATEWAY_PORT=... \
        .venv/bin/python -m bench.analytics [--events 20000] [--orders-seconds 150] [--order-rate 4]

Throughput: with the sink stopped, ``--events`` cart_item_added events (consumed by nobody but the
sink) are queued in RabbitMQ; then the sink is started and the rate at which they reach Kafka is
measured from the first record to the last (so the sink's start-up is not counted).

Freshness: real orders are placed through RPC for ``--orders-seconds``; the gateway's
``GET /api/analytics/kpis`` is polled every 0.2 s as the admin (``GATEWAY_PORT``, the admin password
from ``ADMIN_PASSWORD`` or ``$STACK_DIR/secrets``), and for each order the time from its order_created event
entering RabbitMQ (its occurred_at, stamped when the outbox row commits) to its window first being
visible is recorded, and for each window the time from its end to its visibility.
Results are printed and written to bench/results/analytics-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kombu import Connection, Producer
from nameko.standalone.rpc import ClusterRpcProxy

from bench.events import end_offsets
from bench.stack import Api, Stack
from services.common.envelope import make_envelope
from services.common.outbox import event_exchange
from services.kafka_sink.topics import bootstrap_servers, events_topic

RESULTS = Path(__file__).resolve().parent / "results"
SINKS = ("streaming:kafka_sink_0", "streaming:kafka_sink_1")


def supervisorctl(stack: Stack, *args: str) -> None:
    output = stack.supervisorctl(*args)
    if "ERROR" in output:
        raise SystemExit(f"supervisorctl {' '.join(args)}: {output.strip()}")


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile, as the KPIs use."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] if ordered else float("nan")


def throughput(stack: Stack, events: int) -> dict[str, Any]:
    topic = events_topic("cart")
    supervisorctl(stack, "stop", *SINKS)
    exchange = event_exchange("cart")
    with Connection(stack.amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel())
        for i in range(events):
            envelope = make_envelope("cart", "cart_item_added",
                                     {"customer_id": 1, "product_id": 1 + i % 50, "quantity": 1},
                                     correlation_id="bench", aggregate_id=1 + i % 500)
            producer.publish(envelope, exchange=exchange, routing_key="cart_item_added", serializer="json",
                             delivery_mode=2, declare=[exchange] if i == 0 else [])
    before = end_offsets(topic, bootstrap_servers())
    supervisorctl(stack, "start", *SINKS)
    first = last = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        written = end_offsets(topic, bootstrap_servers()) - before
        now = time.monotonic()
        if written > 0 and first is None:
            first = (now, written)
        if written >= events:
            last = (now, written)
            break
        time.sleep(0.05)
    if first is None or last is None:
        written = end_offsets(topic, bootstrap_servers()) - before
        raise SystemExit(f"only {written} of {events} events reached Kafka in 600 s")
    rate = (last[1] - first[1]) / (last[0] - first[0])
    return {"events": events, "seconds": round(last[0] - first[0], 2), "events_per_second": round(rate)}


def freshness(stack: Stack, seconds: float, rate: float) -> dict[str, Any]:
    created: list[tuple[int, float]] = []  # (order id, epoch seconds of order_created)
    stop = threading.Event()

    def place() -> None:
        with ClusterRpcProxy({"AMQP_URI": stack.amqp_uri}, timeout=30) as rpc:
            email = f"bench-{time.time_ns()}@example.com"
            customer = rpc.customers.register({"name": "Bench", "email": email,
                                               "password": "correct-horse-9"})
            while not stop.is_set():
                started = time.time()
                order = rpc.orders.create_order(customer_id=customer["id"],
                                                items=[{"product_id": 1, "quantity": 1}])
                created.append((order["id"], datetime.fromisoformat(order["created_at"]).timestamp()))
                time.sleep(max(0.0, 1 / rate - (time.time() - started)))

    placer = threading.Thread(target=place, daemon=True)
    placer.start()
    seen: dict[str, float] = {}  # window_start -> first visible (epoch seconds)
    windows: dict[str, dict] = {}
    end = time.time() + seconds
    if not stack.admin_password:
        raise SystemExit("no admin password: set ADMIN_PASSWORD or STACK_DIR (secrets/admin_password)")
    api = Api(stack.gateway_url)
    token = api.login(stack.admin_email, stack.admin_password)["access_token"]
    while True:
        now = time.time()
        if now > end:
            stop.set()
        for window in api.json("GET", "/api/analytics/kpis?limit=50", token)["windows"]:
            seen.setdefault(window["window_start"], now)
            windows[window["window_start"]] = window
        last_order = max((t for _, t in created), default=0)
        if stop.is_set() and any(datetime.fromisoformat(w["window_end"]).timestamp() > last_order
                                 for w in windows.values()):
            break
        time.sleep(0.2)
    placer.join()
    bounds = {start: (datetime.fromisoformat(w["window_start"]).timestamp(),
                      datetime.fromisoformat(w["window_end"]).timestamp()) for start, w in windows.items()}
    event_lags = [seen[start] - at for _, at in created
                  for start, (lo, hi) in bounds.items() if lo <= at < hi]
    close_lags = [seen[start] - hi for start, (lo, hi) in bounds.items()
                  if any(lo <= at < hi for _, at in created)]
    return {
        "orders": len(created),
        "event_to_visible_p50_s": round(pct(event_lags, 50), 2),
        "event_to_visible_p95_s": round(pct(event_lags, 95), 2),
        "window_close_to_visible_p50_s": round(statistics.median(close_lags), 2),
        "window_close_to_visible_p95_s": round(pct(close_lags, 95), 2),
        "windows": len(close_lags),
        "window_seconds": next(iter(windows.values()))["window_seconds"] if windows else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--orders-seconds", type=float, default=150, help="0 skips the freshness run")
    parser.add_argument("--order-rate", type=float, default=4)
    args = parser.parse_args()
    stack = Stack.from_env()
    result: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "load_average": os.getloadavg(),
                              "sink": throughput(stack, args.events)}
    if args.orders_seconds > 0:  # 0: the throughput alone
        result["freshness"] = freshness(stack, args.orders_seconds, args.order_rate)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"analytics-{int(time.time())}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
