"""At-least-once delivery without loss on the real broker and services."""

from __future__ import annotations

import subprocess
import threading
import time

from services.common.envelope import make_envelope
from tests.e2e.conftest import AMQP_URI, FINAL, ROOT, query
from tests.helpers import publish_event, wait_for


def dlq(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "services.common.dlq", *args],
                          capture_output=True, text=True, cwd=ROOT,
                          env={"AMQP_URI": AMQP_URI, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def notifications_for(rpc, customer_id: int) -> list[dict]:
    return rpc.notifications.list_notifications(customer_id)["items"]


def test_the_same_event_delivered_twice_changes_nothing(rpc, customer):
    envelope = make_envelope("orders", "order_confirmed",
                             {"order_id": 987654, "customer_id": customer["id"], "status": "CONFIRMED",
                              "total_cents": 100, "currency": "USD", "reason": None},
                             correlation_id="e2e-duplicate", aggregate_id=987654)
    before = len(notifications_for(rpc, customer["id"]))
    publish_event(AMQP_URI, envelope)
    publish_event(AMQP_URI, envelope)
    wait_for(lambda: len(notifications_for(rpc, customer["id"])) > before, what="the notification")
    time.sleep(2)  # time for the duplicate to be consumed too
    about_it = [n for n in notifications_for(rpc, customer["id"]) if "987654" in n["body"]]
    assert len(about_it) == 1
    assert query("notifications", "select count(*) from processed_events where event_id = ?",
                 envelope["event_id"]) == [(1,)]


def test_a_poison_message_is_parked_and_can_be_replayed(rpc):
    poison = make_envelope("orders", "order_confirmed", {"order_id": 1, "no_customer": True},
                           correlation_id="e2e-poison", aggregate_id=1)
    publish_event(AMQP_URI, poison)
    listing = wait_for(lambda: (out := dlq("list").stdout) and poison["event_id"] in out and out,
                       what="the poison message in the dead-letter queue")
    line = next(line for line in listing.splitlines() if poison["event_id"] in line)
    assert "order_confirmed" in line and "notifications" in line and "deaths=1" in line
    shown = dlq("show", poison["event_id"])
    assert shown.returncode == 0 and '"no_customer": true' in shown.stdout

    replayed = dlq("replay", poison["event_id"])
    assert replayed.returncode == 0 and "replayed 1" in replayed.stdout
    # it went back to its queue, was consumed again, and is parked again (still poison)
    wait_for(lambda: poison["event_id"] in (out := dlq("list").stdout) and "deaths=2" in
             next(x for x in out.splitlines() if poison["event_id"] in x),
             what="the replayed message to be consumed and parked again")
    assert dlq("replay", "no-such-event").returncode == 1


def test_rabbitmq_down_for_20s_while_ordering_loses_nothing(rpc, customer, new_product):
    product = new_product(stock=1000, price_cents=700)
    accepted: list[int] = []
    stop = threading.Event()

    def place_orders() -> None:
        from nameko.standalone.rpc import ClusterRpcProxy

        while not stop.is_set():
            try:
                with ClusterRpcProxy({"AMQP_URI": AMQP_URI}, timeout=5) as proxy:
                    while not stop.is_set():
                        order = proxy.orders.create_order(
                            customer_id=customer["id"], items=[{"product_id": product["id"], "quantity": 1}])
                        accepted.append(order["id"])
                        time.sleep(0.2)
            except Exception:  # the broker is down: this order was not accepted; try again
                time.sleep(0.5)

    placer = threading.Thread(target=place_orders, daemon=True)
    placer.start()
    wait_for(lambda: len(accepted) >= 5, what="orders before the outage")
    subprocess.run(["bash", str(ROOT / "scripts/infra.sh"), "stop", "rabbitmq"], check=True)
    time.sleep(20)
    subprocess.run(["bash", str(ROOT / "scripts/infra.sh"), "start", "rabbitmq"], check=True)
    wait_for(lambda: len(accepted) >= 10, timeout=90, what="orders after the outage")
    stop.set()
    placer.join(timeout=30)

    def finished(order_id: int) -> dict | None:
        order = rpc.orders.get_order(order_id)
        return order if order["status"] in FINAL | {"SHIPPED"} else None

    for order_id in accepted:
        order = wait_for(lambda oid=order_id: finished(oid), timeout=120, what=f"order {order_id} to finish")
        assert order["status"] in {"SHIPPED", "DELIVERED"}, order

    # every event the orders service emitted left its outbox and reached notifications
    wait_for(lambda: query("orders", "select count(*) from outbox where published_at is null") == [(0,)],
             timeout=30, what="the orders outbox to drain")
    aggregates = ",".join(f"'{order_id}'" for order_id in accepted)
    emitted = {row[0] for row in query(
        "orders", "select event_id from outbox where event_type in ('order_created', 'order_confirmed') "
                  f"and json_extract(envelope, '$.aggregate_id') in ({aggregates})")}
    assert len(emitted) == 2 * len(accepted)

    def consumed() -> set[str]:
        return {row[0] for row in query("notifications", "select event_id from processed_events")}

    wait_for(lambda: emitted <= consumed(), timeout=60, what="every order event at notifications")
