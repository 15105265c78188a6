"""The KPI rules of the analytics job (analytics/kpis.py), without Flink: parsing and one window."""

from __future__ import annotations

import json

import pytest

from analytics import kpis
from services.common.envelope import make_envelope

T0 = 1_800_000_000_000  # a window start, in epoch ms


def envelope(source: str, event_type: str, payload: dict, ms: int) -> str:
    event = make_envelope(source, event_type, payload, correlation_id=None,
                          aggregate_id=payload.get("order_id"))
    event["occurred_at"] = kpis.iso_from_ms(ms).replace("Z", "+00:00")
    return json.dumps(event)


def order(event_type: str, order_id: int, ms: int, total: int = 1000, currency: str = "USD",
          items: list | None = None) -> kpis.Fact:
    payload = {"order_id": order_id, "customer_id": 1, "status": "X", "total_cents": total,
               "currency": currency, "reason": None}
    if items is not None:
        payload["items"] = [{"product_id": p, "sku": f"SKU-{p}", "quantity": q, "unit_price_cents": 1}
                            for p, q in items]
    fact = kpis.parse(envelope("orders", event_type, payload, ms))
    assert fact is not None
    return fact


def payment(event_type: str, order_id: int, ms: int) -> kpis.Fact:
    payload = {"order_id": order_id, "customer_id": 1, "payment_id": order_id, "amount_cents": 1000,
               "currency": "USD", "reason": None if event_type == "payment_captured" else "declined"}
    fact = kpis.parse(envelope("payments", event_type, payload, ms))
    assert fact is not None
    return fact


def test_parse_keeps_what_the_kpis_need():
    fact = order("order_created", 7, T0 + 1500, total=2500, currency="EUR", items=[(3, 2), (4, 1)])
    assert fact.kind == "order_created" and fact.ts_ms == T0 + 1500 and fact.order_id == "7"
    assert (fact.currency, fact.amount_cents) == ("EUR", 2500)
    assert json.loads(fact.detail) == [[3, "SKU-3", 2], [4, "SKU-4", 1]]


def test_events_no_kpi_reads_and_heartbeats_are_ignored_not_errors():
    assert kpis.parse(envelope("cart", "cart_item_added", {"customer_id": 1}, T0)) is None
    assert kpis.parse(json.dumps({"type": "heartbeat", "at": "2026-01-01T00:00:00+00:00"})) is None


@pytest.mark.parametrize("raw", [
    None, b"\xff\xfe", "{not json", "[1, 2]", json.dumps({"type": "order_created"}),
    envelope("orders", "order_created", {"order_id": "7", "total_cents": 1, "currency": "USD"}, T0),
    envelope("orders", "order_created", {"order_id": 7, "total_cents": 1, "currency": "USD"}, T0),
    envelope("orders", "order_confirmed", {"order_id": 7, "total_cents": True, "currency": "USD"}, T0),
    json.dumps({"event_id": "e", "type": "order_confirmed", "occurred_at": "yesterday", "payload": {}}),
    json.dumps({"event_id": "e", "type": "order_confirmed", "occurred_at": "2026-01-01T00:00:00",
                "payload": {"order_id": 1, "total_cents": 1, "currency": "USD"}}),
])
def test_malformed_records_raise_bad_record(raw):
    with pytest.raises(kpis.BadRecord):
        kpis.parse(raw)


def test_a_window_computed_by_hand():
    facts = [
        order("order_created", 1, T0 + 100, items=[(10, 2), (20, 1)]),
        order("order_created", 2, T0 + 200, currency="EUR", items=[(30, 3)]),
        order("order_created", 3, T0 + 300, items=[(10, 1)]),
        order("order_created", 4, T0 + 400, items=[(40, 1)]),
        order("order_created", 5, T0 + 500, items=[(50, 1)]),
        order("order_created", 6, T0 + 600, items=[(60, 1)]),
        payment("payment_captured", 1, T0 + 1000), payment("payment_captured", 2, T0 + 1000),
        payment("payment_captured", 3, T0 + 1000), payment("payment_declined", 4, T0 + 1000),
        order("order_confirmed", 1, T0 + 2000, total=5500),
        order("order_confirmed", 2, T0 + 2000, total=2400, currency="EUR"),
        order("order_confirmed", 3, T0 + 2000, total=1251),
        order("order_cancelled", 3, T0 + 3000), order("order_cancelled", 4, T0 + 3000),
        order("order_rejected", 5, T0 + 3000),
        kpis.ship_latency("1", T0 + 100, T0 + 3100), kpis.ship_latency("2", T0 + 200, T0 + 5200),
        kpis.ship_latency("6", T0 + 600, T0 + 1600),
    ]
    record = kpis.window_kpis(T0, T0 + 60_000, facts)
    assert record == {
        "window_start": kpis.iso_from_ms(T0), "window_end": kpis.iso_from_ms(T0 + 60_000),
        "orders_placed": 6,
        "orders_confirmed": {"EUR": 1, "USD": 2},
        "gmv_cents": {"EUR": 2400, "USD": 6751},
        # 6751 / 2 = 3375.5, rounded half up
        "avg_order_value_cents": {"EUR": 2400, "USD": 3376},
        "payments_captured": 3, "payments_declined": 1, "payment_failure_rate": 0.25,
        # product 10 and 30 tie at 3 units: the lower id first; six products, five shown
        "top_products": [{"product_id": 10, "sku": "SKU-10", "units": 3},
                         {"product_id": 30, "sku": "SKU-30", "units": 3},
                         {"product_id": 20, "sku": "SKU-20", "units": 1},
                         {"product_id": 40, "sku": "SKU-40", "units": 1},
                         {"product_id": 50, "sku": "SKU-50", "units": 1}],
        "cancellations": 2, "rejections": 1,
        # latencies 1000, 3000, 5000 ms: nearest rank p50 = 2nd, p95 = 3rd
        "orders_shipped": 3, "ship_latency_p50_ms": 3000, "ship_latency_p95_ms": 5000,
        "events": 19, "duplicates_dropped": 0,
    }


def test_an_event_delivered_twice_counts_once():
    created = order("order_created", 1, T0, items=[(10, 2)])
    confirmed = order("order_confirmed", 1, T0 + 1, total=1000)
    latency = kpis.ship_latency("1", T0, T0 + 5)
    record = kpis.window_kpis(T0, T0 + 1000, [created, confirmed, created, confirmed, latency, latency])
    assert record["orders_placed"] == 1 and record["gmv_cents"] == {"USD": 1000}
    assert record["top_products"] == [{"product_id": 10, "sku": "SKU-10", "units": 2}]
    assert record["orders_shipped"] == 1
    assert (record["events"], record["duplicates_dropped"]) == (3, 3)


def test_an_empty_side_has_no_rate_and_no_percentiles():
    record = kpis.window_kpis(T0, T0 + 1000, [order("order_created", 1, T0, items=[(1, 1)])])
    assert record["payment_failure_rate"] is None
    assert record["ship_latency_p50_ms"] is None and record["ship_latency_p95_ms"] is None
    assert record["avg_order_value_cents"] == {}


@pytest.mark.parametrize(("values", "p50", "p95"), [
    ([5], 5, 5), ([1, 2], 1, 2), (list(range(1, 21)), 10, 19), (list(range(1, 101)), 50, 95),
])
def test_nearest_rank_percentiles(values, p50, p95):
    assert (kpis.percentile(values, 50), kpis.percentile(values, 95)) == (p50, p95)
