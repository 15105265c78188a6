"""What the analytics job computes, as plain Python: parsing records into facts, and one window's KPIs.

No Flink here, so the rules are unit-tested without a JVM (tests/unit/test_analytics_kpis.py)
and the job (``analytics/job.py``) only wires them into Flink operators.

A *fact* is the part of a domain event a KPI needs, as a tuple of fixed types so Flink
serialises it cheaply::

    (kind, fact_id, ts_ms, order_id, currency, amount_cents, detail)

``fact_id`` is the event's ``event_id``: two facts with the same id are one event delivered
twice, and a window counts it once. ``detail`` is JSON of ``[[product_id, sku, units], ...]``
for ``order_created`` and empty otherwise.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, NamedTuple

#: the domain events the KPIs read, by type; every other event type is ignored, not an error
ORDER_CREATED = "order_created"
ORDER_CONFIRMED = "order_confirmed"
ORDER_SHIPPED = "order_shipped"
ORDER_CANCELLED = "order_cancelled"
ORDER_REJECTED = "order_rejected"
PAYMENT_CAPTURED = "payment_captured"
PAYMENT_DECLINED = "payment_declined"
KPI_EVENTS = frozenset({ORDER_CREATED, ORDER_CONFIRMED, ORDER_SHIPPED, ORDER_CANCELLED, ORDER_REJECTED,
                        PAYMENT_CAPTURED, PAYMENT_DECLINED})
#: the fact the job derives by joining an order's order_created and order_shipped
SHIP_LATENCY = "ship_latency"
#: what the sink writes to the heartbeat topic so event time advances while the shop is quiet
HEARTBEAT = "heartbeat"

TOP_PRODUCTS = 5


class Fact(NamedTuple):
    kind: str
    fact_id: str
    ts_ms: int
    order_id: str
    currency: str
    amount_cents: int
    detail: str


class BadRecord(ValueError):
    """A record on an input topic that is not a well-formed domain event."""


def to_epoch_ms(iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        raise BadRecord(f"occurred_at without a time zone: {iso!r}")
    return int(moment.timestamp() * 1000)


def iso_from_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _require(payload: dict[str, Any], name: str, kind: type) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadRecord(f"payload.{name} must be {kind.__name__}, got {value!r}")
    return value


def parse(raw: str | bytes | None) -> Fact | None:
    """The fact in one input record; None for an event no KPI reads (or a heartbeat).

    Raises BadRecord for anything that is not a domain event envelope with the fields
    its type promises; the job counts, logs and skips those.
    """
    if raw is None:
        raise BadRecord("empty record")
    try:
        envelope = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRecord(f"not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise BadRecord("not a JSON object")
    event_type = envelope.get("type")
    if event_type == HEARTBEAT:
        return None
    if not isinstance(event_type, str) or not isinstance(envelope.get("event_id"), str) \
            or not envelope["event_id"] or not isinstance(envelope.get("payload"), dict) \
            or not isinstance(envelope.get("occurred_at"), str):
        raise BadRecord("not an event envelope (event_id, type, occurred_at, payload)")
    if event_type not in KPI_EVENTS:
        return None
    try:
        ts_ms = to_epoch_ms(envelope["occurred_at"])
    except ValueError as exc:
        raise BadRecord(f"occurred_at: {exc}") from None
    payload = envelope["payload"]
    order_id = str(_require(payload, "order_id", int))
    event_id = envelope["event_id"]
    if event_type.startswith("payment_"):
        return Fact(event_type, event_id, ts_ms, order_id, _require(payload, "currency", str),
                    _require(payload, "amount_cents", int), "")
    currency = _require(payload, "currency", str)
    total = _require(payload, "total_cents", int)
    detail = ""
    if event_type == ORDER_CREATED:
        items = payload.get("items")
        if not isinstance(items, list) or not items:
            raise BadRecord("order_created without items")
        lines = []
        for item in items:
            if not isinstance(item, dict):
                raise BadRecord("order_created item is not an object")
            lines.append([_require(item, "product_id", int), str(item.get("sku", "")),
                          _require(item, "quantity", int)])
        detail = json.dumps(lines)
    return Fact(event_type, event_id, ts_ms, order_id, currency, total, detail)


def ship_latency(order_id: str, created_ms: int, shipped_ms: int) -> Fact:
    """The derived fact for one shipped order, timed at its shipping (its window is the shipping's)."""
    return Fact(SHIP_LATENCY, f"{SHIP_LATENCY}:{order_id}", shipped_ms, order_id, "",
                shipped_ms - created_ms, "")


def percentile(sorted_values: list[int], pct: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least pct % of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _round_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, in integers (money stays exact)."""
    return (2 * numerator + denominator) // (2 * denominator)


def window_kpis(window_start_ms: int, window_end_ms: int, facts: Any) -> dict[str, Any]:
    """The KPI record of one tumbling window [start, end) from its facts, each event counted once."""
    unique: dict[str, Fact] = {}
    received = 0
    for fact in facts:
        received += 1
        unique.setdefault(fact[1], Fact(*fact))
    placed = cancelled = rejected = captured = declined = 0
    confirmed: dict[str, int] = {}
    gmv: dict[str, int] = {}
    units: dict[int, int] = {}
    skus: dict[int, str] = {}
    latencies: list[int] = []
    for fact in unique.values():
        if fact.kind == ORDER_CREATED:
            placed += 1
            for product_id, sku, quantity in json.loads(fact.detail):
                units[product_id] = units.get(product_id, 0) + quantity
                skus[product_id] = sku
        elif fact.kind == ORDER_CONFIRMED:
            confirmed[fact.currency] = confirmed.get(fact.currency, 0) + 1
            gmv[fact.currency] = gmv.get(fact.currency, 0) + fact.amount_cents
        elif fact.kind == ORDER_CANCELLED:
            cancelled += 1
        elif fact.kind == ORDER_REJECTED:
            rejected += 1
        elif fact.kind == PAYMENT_CAPTURED:
            captured += 1
        elif fact.kind == PAYMENT_DECLINED:
            declined += 1
        elif fact.kind == SHIP_LATENCY:
            latencies.append(fact.amount_cents)
    latencies.sort()
    top = sorted(units.items(), key=lambda item: (-item[1], item[0]))[:TOP_PRODUCTS]
    payments = captured + declined
    return {
        "window_start": iso_from_ms(window_start_ms),
        "window_end": iso_from_ms(window_end_ms),
        "orders_placed": placed,
        "orders_confirmed": dict(sorted(confirmed.items())),
        "gmv_cents": dict(sorted(gmv.items())),
        "avg_order_value_cents": {currency: _round_div(gmv[currency], confirmed[currency])
                                  for currency in sorted(gmv)},
        "payments_captured": captured,
        "payments_declined": declined,
        "payment_failure_rate": round(declined / payments, 6) if payments else None,
        "top_products": [{"product_id": product_id, "sku": skus[product_id], "units": count}
                         for product_id, count in top],
        "cancellations": cancelled,
        "rejections": rejected,
        "orders_shipped": len(latencies),
        "ship_latency_p50_ms": percentile(latencies, 50),
        "ship_latency_p95_ms": percentile(latencies, 95),
        "events": len(unique),
        "duplicates_dropped": received - len(unique),
    }
