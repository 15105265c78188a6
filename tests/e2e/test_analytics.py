"""Analytics end to end: the stack's real Kafka, the real sink and the real PyFlink job.

scripts/test.sh starts them with the stack (supervisord group ``streaming``) with 10-second windows
and 3-second checkpoints. The tests read Kafka directly (kafka-python) and the KPIs through the
analytics RPC, which is what the gateway's GET /api/analytics/kpis serves.

Two oracles:
- ``test_kpis_of_a_scripted_sequence_are_exact`` compares with values computed by hand;
- the failure tests compare every KPI window the job emitted with the windows an uninterrupted
  run computes from what is in the input topics (``reference_windows``: each event_id once), and
  check that no window was emitted twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
import requests
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from nameko.standalone.rpc import ClusterRpcProxy

from analytics import kpis
from services.common.config import SERVICES
from services.common.errors import ValidationFailed
from tests.e2e.conftest import AMQP_URI, FINAL, ROOT, STACK_DIR, query, supervisorctl
from tests.helpers import publish_event, wait_for

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
FLINK_REST = f"http://127.0.0.1:{os.environ.get('ANALYTICS_FLINK_REST_PORT', '8081')}"
WINDOW_MS = int(os.environ.get("ANALYTICS_WINDOW_SECONDS", "60")) * 1000
#: after this long past its end a window must be in the KPI topic: out-of-orderness + idleness
#: + checkpoint interval (test.sh: 5 + 2 + 3 s) and slack for a loaded 2-core machine
SETTLE_MS = 25_000
KPI_INPUTS = ["orders.events", "payments.events"]
STREAMING = ["kafka", "kafka_sink_0", "kafka_sink_1", "analytics", "flink_kpis"]
#: what a replayed window may differ in
VOLATILE = {"emitted_at", "revision", "window_seconds"}


@pytest.fixture(scope="module", autouse=True)
def streaming_is_running() -> None:
    status = supervisorctl("status")
    stopped = [name for name in STREAMING if not re.search(rf"streaming:{name}\s+RUNNING", status)]
    if stopped:
        pytest.fail(f"the stack's analytics programs are not running ({', '.join(stopped)}); they need "
                    "Java 17 (scripts/kafka.sh check) and `supervisorctl start streaming:*`")
    wait_for(lambda: flink_job() is not None, timeout=120, what="the Flink job to run")


# --- reading Kafka -----------------------------------------------------------------------------


def read_topics(topics: list[str], committed: bool = False) -> list[Any]:
    """Every record now in ``topics``, oldest first per partition (read_committed if asked)."""
    consumer = KafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, group_id=None,
                             isolation_level="read_committed" if committed else "read_uncommitted")
    try:
        partitions = [TopicPartition(topic, p) for topic in topics
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, "reading the topics took over 60 s"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def event_topics() -> list[str]:
    return [f"{service}.events" for service in SERVICES]


def kafka_envelopes(topics: list[str]) -> list[dict]:
    """The events in ``topics``; what is not an envelope (the bad-record test's records) is left out."""
    envelopes = []
    for record in read_topics(topics):
        try:
            value = json.loads(record.value)
        except ValueError:
            continue
        if isinstance(value, dict) and "aggregate_id" in value and "occurred_at" in value:
            envelopes.append(value)
    return envelopes


def kpi_records() -> list[dict]:
    """The KPI topic as consumers see it: committed transactions only, in order."""
    return [json.loads(record.value) for record in read_topics(["analytics.kpis"], committed=True)]


def latest_windows(records: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for record in records:
        latest[record["window_start"]] = record
    return latest


def reference_windows() -> dict[str, dict]:
    """The windows an uninterrupted run computes from everything in the input topics."""
    facts: list[kpis.Fact] = []
    created: dict[str, int] = {}
    shipped: dict[str, int] = {}
    for record in read_topics(KPI_INPUTS):
        try:
            fact = kpis.parse(record.value)
        except kpis.BadRecord:
            continue
        if fact is None:
            continue
        facts.append(fact)
        if fact.kind == kpis.ORDER_CREATED:
            created[fact.order_id] = fact.ts_ms
        elif fact.kind == kpis.ORDER_SHIPPED:
            shipped[fact.order_id] = fact.ts_ms
    facts += [kpis.ship_latency(order_id, created[order_id], at) for order_id, at in shipped.items()
              if order_id in created]
    by_window: dict[int, list[kpis.Fact]] = defaultdict(list)
    for fact in facts:
        by_window[fact.ts_ms - fact.ts_ms % WINDOW_MS].append(fact)
    return {kpis.iso_from_ms(start): kpis.window_kpis(start, start + WINDOW_MS, window_facts)
            for start, window_facts in by_window.items()}


def ms(iso: str) -> int:
    return kpis.to_epoch_ms(iso)


def window_mismatches() -> list[str]:
    """How the emitted windows differ from the reference, for windows that must have closed by now."""
    settled = int(time.time() * 1000) - SETTLE_MS
    emitted = latest_windows(kpi_records())
    problems = []
    for start, expected in sorted(reference_windows().items()):
        if ms(expected["window_end"]) > settled:
            continue
        got = emitted.get(start)
        if got is None:
            problems.append(f"window {start} missing")
            continue
        got = {key: value for key, value in got.items() if key not in VOLATILE}
        if got != expected:
            diff = {key: (got.get(key), value) for key, value in expected.items() if got.get(key) != value}
            problems.append(f"window {start}: (emitted, expected) {diff}")
    return problems


def assert_windows_match_an_uninterrupted_run() -> None:
    try:
        wait_for(lambda: not window_mismatches(), timeout=120, interval=2, what="the KPI windows")
    except AssertionError:
        pytest.fail("KPI windows differ from an uninterrupted run:\n" + "\n".join(window_mismatches()[:10]))
    # exactly-once output: a window is emitted once, and again only for a late event (revision + 1)
    firsts = Counter(record["window_start"] for record in kpi_records() if record["revision"] == 1)
    assert [start for start, count in firsts.items() if count > 1] == []


# --- the platform ------------------------------------------------------------------------------


def flink_job() -> dict | None:
    try:
        jobs = requests.get(f"{FLINK_REST}/jobs/overview", timeout=3).json()["jobs"]
    except (requests.RequestException, ValueError, KeyError):  # down, or still starting
        return None
    return next((job for job in jobs if job["state"] == "RUNNING"), None)


def bad_records_metric() -> int:
    """The job's bad_records counter; 0 until the first bad record registers it (PyFlink reports a
    Python metric to Flink only once it has a value)."""
    job = flink_job()
    assert job is not None, "the Flink job is not running"
    detail = requests.get(f"{FLINK_REST}/jobs/{job['jid']}", timeout=3).json()
    for vertex in detail["vertices"]:
        base = f"{FLINK_REST}/jobs/{job['jid']}/vertices/{vertex['id']}/metrics"
        names = [metric["id"] for metric in requests.get(base, timeout=3).json()]
        metric = next((name for name in names if name.endswith(".bad_records")), None)
        if metric:
            return int(requests.get(base, params={"get": metric}, timeout=3).json()[0]["value"])
    return 0


def quiet_platform() -> None:
    """No order in flight and nothing waiting for the sink: what follows is the test's alone."""
    wait_for(lambda: query("orders", "select count(*) from orders where status not in (?, ?, ?)",
                           *FINAL) == [(0,)], timeout=60, what="every order to be final")
    vhost = AMQP_URI.rsplit("/", 1)[1]

    def sink_idle() -> bool:
        queues = requests.get(f"http://localhost:15672/api/queues/{vhost}?columns=name,messages",
                              auth=("guest", "guest"), timeout=5).json()
        return all(queue.get("messages", 0) == 0 for queue in queues if "kafka_sink" in queue["name"])

    wait_for(sink_idle, timeout=60, what="the sink to drain its queues")


def sleep_until_window_start() -> int:
    """Sleep to just after the next window boundary, so earlier events share no window with ours."""
    now = int(time.time() * 1000)
    start = now - now % WINDOW_MS + WINDOW_MS
    time.sleep((start - now) / 1000 + 0.2)
    return start


def wait_final(rpc: Any, order_id: int, timeout: float = 60) -> str:
    return wait_for(lambda: (status := rpc.orders.get_order(order_id)["status"]) in FINAL and status,
                    timeout=timeout, what=f"order {order_id} to finish")


class OrderPlacer:
    """Places an order every ``interval`` seconds until stopped, surviving outages; keeps the accepted ids."""

    def __init__(self, customer_id: int, product_id: int, interval: float = 0.25):
        self.customer_id, self.product_id, self.interval = customer_id, product_id, interval
        self.accepted: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OrderPlacer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with ClusterRpcProxy({"AMQP_URI": AMQP_URI}, timeout=10) as proxy:
                    while not self._stop.is_set():
                        items = [{"product_id": self.product_id, "quantity": 1}]
                        order = proxy.orders.create_order(customer_id=self.customer_id, items=items)
                        self.accepted.append(order["id"])
                        time.sleep(self.interval)
            except Exception:  # a failed call placed no order; start a new proxy and go on
                time.sleep(0.5)


# --- the tests ---------------------------------------------------------------------------------


def test_kpis_of_a_scripted_sequence_are_exact(rpc, customer, new_product):
    usd_a = new_product(stock=100, price_cents=1250)
    usd_b = new_product(stock=100, price_cents=3000)
    eur = new_product(stock=100, price_cents=800, currency="EUR")
    declined = new_product(stock=100, price_cents=2013)  # amounts ending in 13 cents are declined
    sold_out = new_product(stock=0, price_cents=500)
    quiet_platform()
    start_ms = sleep_until_window_start()

    def place(*lines: tuple[dict, int]) -> int:
        items = [{"product_id": product["id"], "quantity": quantity} for product, quantity in lines]
        return rpc.orders.create_order(customer_id=customer["id"], items=items)["id"]

    shipped_usd = place((usd_a, 2), (usd_b, 1))  # 2 x 12.50 + 30.00 = 55.00 USD, paid, shipped
    shipped_eur = place((eur, 3))  # 24.00 EUR, paid, shipped
    cancelled = place((usd_a, 1))  # 12.50 USD, paid, then cancelled by the customer: refunded
    wait_for(lambda: rpc.orders.get_order(cancelled)["status"] == "CONFIRMED", interval=0.02,
             what="the order to be cancelled to be confirmed")
    rpc.orders.cancel_order(cancelled, customer_id=customer["id"])
    declined_order = place((declined, 1))  # 20.13 USD: payment declined -> cancelled
    rejected = place((sold_out, 1))  # out of stock -> rejected
    finals = {order_id: wait_final(rpc, order_id)
              for order_id in (shipped_usd, shipped_eur, cancelled, declined_order, rejected)}
    assert finals == {shipped_usd: "DELIVERED", shipped_eur: "DELIVERED", cancelled: "CANCELLED",
                      declined_order: "CANCELLED", rejected: "REJECTED"}, \
        "the parcel left before the cancellation arrived (ship delay too short for this machine?)"

    # the timestamps of our events, as the job sees them (the sink stamps records with occurred_at)
    ours = {str(order_id) for order_id in finals}

    def our_events() -> dict[tuple[str, str], int]:
        return {(env["type"], env["aggregate_id"]): kpis.to_epoch_ms(env["occurred_at"])
                for env in kafka_envelopes(KPI_INPUTS) if env["aggregate_id"] in ours}

    lifecycle = ["order_created", "payment_captured", "order_confirmed", "order_shipped", "order_delivered"]
    expected_events = {
        *((event_type, str(shipped_usd)) for event_type in lifecycle),
        *((event_type, str(shipped_eur)) for event_type in lifecycle),
        *((event_type, str(cancelled)) for event_type in [
            "order_created", "payment_captured", "order_confirmed", "order_cancellation_requested",
            "payment_refunded", "order_cancelled"]),
        ("order_created", str(declined_order)), ("payment_declined", str(declined_order)),
        ("order_cancelled", str(declined_order)),
        ("order_created", str(rejected)), ("order_rejected", str(rejected)),
    }
    events = wait_for(lambda: (found := our_events()).keys() == expected_events and found, timeout=30,
                      what="our events in Kafka")
    assert min(events.values()) >= start_ms
    # the newest event a KPI reads: its window is the last one to wait for
    last_ms = max(at for (event_type, _), at in events.items() if event_type in kpis.KPI_EVENTS)

    def our_windows() -> list[dict]:
        windows = rpc.analytics.get_kpis(limit=50)["windows"]
        return [w for w in windows if start_ms <= ms(w["window_start"]) <= last_ms]

    windows = wait_for(lambda: (found := our_windows()) and ms(found[0]["window_end"]) > last_ms and found,
                       timeout=60, what="the KPI windows of our events")

    def total(field: str) -> Any:
        if isinstance(windows[0][field], dict):
            summed: Counter = Counter()
            for window in windows:
                summed.update(window[field])
            return dict(summed)
        return sum(window[field] for window in windows)

    assert total("orders_placed") == 5
    assert total("orders_confirmed") == {"USD": 2, "EUR": 1}
    assert total("gmv_cents") == {"USD": 5500 + 1250, "EUR": 2400}
    assert (total("payments_captured"), total("payments_declined")) == (3, 1)
    assert (total("cancellations"), total("rejections")) == (2, 1)
    units: Counter = Counter()
    for window in windows:
        units.update({top["product_id"]: top["units"] for top in window["top_products"]})
    assert units == {usd_a["id"]: 3, usd_b["id"]: 1, eur["id"]: 3, declined["id"]: 1, sold_out["id"]: 1}
    # per window: what depends on how the events fell into windows
    latencies: dict[str, list[int]] = defaultdict(list)
    for order_id in (shipped_usd, shipped_eur):
        shipped_at = events[("order_shipped", str(order_id))]
        start = kpis.iso_from_ms(shipped_at - shipped_at % WINDOW_MS)
        latencies[start].append(shipped_at - events[("order_created", str(order_id))])
    for window in windows:
        for currency, gmv in window["gmv_cents"].items():
            count = window["orders_confirmed"][currency]
            assert window["avg_order_value_cents"][currency] == (2 * gmv + count) // (2 * count)
        payments = window["payments_captured"] + window["payments_declined"]
        assert window["payment_failure_rate"] == (round(window["payments_declined"] / payments, 6)
                                                  if payments else None)
        mine = sorted(latencies.get(window["window_start"], []))
        assert window["orders_shipped"] == len(mine)
        assert window["ship_latency_p50_ms"] == (mine[0] if mine else None)  # nearest rank of 1 or 2
        assert window["ship_latency_p95_ms"] == (mine[-1] if mine else None)
        assert window["duplicates_dropped"] == 0
        assert window["window_seconds"] * 1000 == WINDOW_MS


def test_a_malformed_record_is_skipped_counted_and_logged(rpc, customer, new_product):
    before = bad_records_metric()
    job = flink_job()
    marker = uuid.uuid4().hex
    producer = KafkaProducer(bootstrap_servers=KAFKA, acks="all")
    producer.send("orders.events", key=b"1", value=f"{{not json {marker}".encode()).get(timeout=10)
    producer.send("orders.events", key=b"1", value=json.dumps(
        {"event_id": marker, "type": "order_created", "occurred_at": "2026-01-01T00:00:00+00:00",
         "payload": {"order_id": "not-a-number", "marker": marker}}).encode()).get(timeout=10)
    producer.close()
    wait_for(lambda: bad_records_metric() == before + 2, timeout=30, what="bad_records to count both")
    log_file = STACK_DIR / "log" / "flink_kpis.log"
    wait_for(lambda: log_file.read_text(errors="replace").count(marker) >= 2, timeout=30,
             what="both records in the job's log")
    assert "skipping malformed record" in next(line for line in log_file.read_text(errors="replace")
                                                .splitlines() if marker in line)
    # the job kept running (same job, no restart) and still computes windows
    assert flink_job()["jid"] == job["jid"]
    product = new_product(stock=10, price_cents=990)
    order = rpc.orders.create_order(customer_id=customer["id"],
                                    items=[{"product_id": product["id"], "quantity": 1}])
    wait_final(rpc, order["id"])
    assert_windows_match_an_uninterrupted_run()
    assert flink_job()["jid"] == job["jid"]


def outbox_events_since(since_ms: int) -> set[str]:
    ids = set()
    for service in SERVICES:
        for (envelope,) in query(service, "select envelope from outbox"):
            event = json.loads(envelope)
            if kpis.to_epoch_ms(event["occurred_at"]) >= since_ms:
                ids.add(event["event_id"])
    return ids


def delivery_notified() -> set[int]:
    """The orders whose delivery the notifications service has notified (its outbox's events)."""
    notified = set()
    sent = query("notifications", "select envelope from outbox where event_type = 'notification_sent'")
    for (envelope,) in sent:
        payload = json.loads(envelope)["payload"]
        if payload.get("event_type") == "order_delivered":
            notified.add(payload["order_id"])
    return notified


def parked_by_the_sink() -> list[str]:
    listing = subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "services.common.dlq", "list"],
                             capture_output=True, text=True, cwd=ROOT, check=True,
                             env={**os.environ, "AMQP_URI": AMQP_URI, "PYTHONPATH": str(ROOT)}).stdout
    return [line for line in listing.splitlines() if "kafka_sink" in line]


def orders_placed_since(start_ms: int, expected: int) -> int:
    """Orders placed in the windows from ``start_ms`` on, once the windows reached ``expected``
    or stopped changing (the newest windows close SETTLE_MS after their end)."""
    deadline = time.monotonic() + SETTLE_MS / 1000 + 60
    while True:
        placed = sum(window["orders_placed"] for start, window in latest_windows(kpi_records()).items()
                     if ms(start) >= start_ms)
        if placed == expected or time.monotonic() > deadline:
            return placed
        time.sleep(2)


def test_kafka_down_30s_while_ordering_loses_nothing_and_counts_nothing_twice(rpc, customer, new_product):
    product = new_product(stock=1000, price_cents=700)
    quiet_platform()
    start_ms = sleep_until_window_start()
    with OrderPlacer(customer["id"], product["id"]) as placer:
        time.sleep(3)
        supervisorctl("stop", "streaming:kafka")
        time.sleep(30)
        supervisorctl("start", "streaming:kafka")
        time.sleep(3)
    assert len(placer.accepted) > 50
    delivered = {order_id for order_id in placer.accepted
                 if wait_final(rpc, order_id, timeout=120) == "DELIVERED"}
    # a delivery's notification comes after the order reads DELIVERED: the last event of its chain,
    # which the outboxes below must already hold
    wait_for(lambda: delivered <= delivery_notified(), what="every delivered order's notification")
    # one event delivered twice: the sink writes it twice, the KPIs must count it once
    ((duplicate_json,),) = query("orders", "select envelope from outbox where event_type = 'order_created' "
                                           "order by id desc limit 1")
    duplicate = json.loads(duplicate_json)
    publish_event(AMQP_URI, duplicate)
    for service in SERVICES:
        wait_for(lambda s=service: query(s, "select count(*) from outbox where published_at is null")
                 == [(0,)], what=f"{service}'s outbox to be published")
    emitted = outbox_events_since(start_ms)

    def in_kafka() -> Counter:
        return Counter(env["event_id"] for env in kafka_envelopes(event_topics())
                       if kpis.to_epoch_ms(env["occurred_at"]) >= start_ms)

    found = wait_for(lambda: emitted <= set(counts := in_kafka()) and counts, timeout=120, interval=2,
                     what="every emitted event in Kafka")
    assert set(found) == emitted
    assert found[duplicate["event_id"]] >= 2
    # while Kafka was away the sink waited with its messages unacknowledged: none was parked
    assert parked_by_the_sink() == []
    assert_windows_match_an_uninterrupted_run()
    assert orders_placed_since(start_ms, len(placer.accepted)) == len(placer.accepted)
    created_ms = kpis.to_epoch_ms(duplicate["occurred_at"])
    window = latest_windows(kpi_records())[kpis.iso_from_ms(created_ms - created_ms % WINDOW_MS)]
    assert window["duplicates_dropped"] >= 1


def kill_flink_job() -> None:
    """kill -9 the job's whole process group (its Python client, JVM and Python workers)."""
    pid = int(supervisorctl("pid", "streaming:flink_kpis"))
    os.killpg(pid, signal.SIGKILL)


def completed_checkpoints(job: dict) -> int:
    checkpoints = requests.get(f"{FLINK_REST}/jobs/{job['jid']}/checkpoints", timeout=3).json()
    return checkpoints["counts"]["completed"]


def test_flink_job_killed_mid_stream_restarts_from_its_checkpoint(rpc, customer, new_product):
    product = new_product(stock=1000, price_cents=450)
    quiet_platform()
    start_ms = sleep_until_window_start()
    log_file = STACK_DIR / "log" / "flink_kpis.log"
    log_before = len(log_file.read_text(errors="replace"))
    first_job = flink_job()
    with OrderPlacer(customer["id"], product["id"]) as placer:
        checkpoints = completed_checkpoints(first_job)
        wait_for(lambda: completed_checkpoints(first_job) >= checkpoints + 2, timeout=30,
                 what="checkpoints while orders flow")
        time.sleep(1.5)  # between two checkpoints: some output is not committed yet
        kill_flink_job()
        second_job = wait_for(lambda: (job := flink_job()) and job["jid"] != first_job["jid"] and job,
                              timeout=180, interval=1, what="the job to be restarted")
        time.sleep(5)
    assert "restoring from checkpoint" in log_file.read_text(errors="replace")[log_before:]
    assert second_job["state"] == "RUNNING"
    for order_id in placer.accepted:
        wait_final(rpc, order_id, timeout=120)
    assert_windows_match_an_uninterrupted_run()
    assert orders_placed_since(start_ms, len(placer.accepted)) == len(placer.accepted)


def test_kpis_are_served_newest_first_with_their_bounds(rpc):
    served = rpc.analytics.get_kpis(limit=3)
    assert served["topic"] == "analytics.kpis" and served["reachable"] is True
    windows = served["windows"]
    assert 1 <= len(windows) <= 3
    assert [w["window_start"] for w in windows] == sorted((w["window_start"] for w in windows), reverse=True)
    for window in windows:
        assert ms(window["window_end"]) - ms(window["window_start"]) == WINDOW_MS
    with pytest.raises(ValidationFailed):
        rpc.analytics.get_kpis(limit=0)
