"""From raw records to figures: per-endpoint tables, time series, knees, saga latencies."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np

from bench.stack import FINAL, LOG_PIPELINE, MONITORING, NOT_STACK
from bench.stats import summarize

#: the statuses that end the saga's own work: confirmed (the courier's timers remain) or refused
SAGA_DECIDED = frozenset({"CONFIRMED", "REJECTED", "CANCELLED"})

Sample = list  # [start epoch s, endpoint, latency ms, ok, HTTP status]


def window_of(samples: list[Sample]) -> tuple[float, float]:
    """From the first request's start to the last response."""
    return min(s[0] for s in samples), max(s[0] + s[2] / 1000 for s in samples)


def endpoint_table(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    """req/s, latency percentiles and error rate per endpoint (and in total)."""
    if not samples:
        return {}
    start, end = window_of(samples)
    seconds = max(end - start, 1e-9)
    by_name: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_name[sample[1]].append(sample)
    by_name["all"] = samples
    table = {}
    for name, rows in sorted(by_name.items()):
        errors = sum(1 for r in rows if not r[3])
        statuses: dict[str, int] = defaultdict(int)
        for r in rows:
            if not r[3]:
                statuses[str(r[4])] += 1
        table[name] = {
            "requests": len(rows),
            "rps": round(len(rows) / seconds, 2),
            **{k: v for k, v in summarize([r[2] for r in rows]).items() if k != "count"},
            "errors": errors,
            "error_rate": round(errors / len(rows), 4),
            "error_statuses": dict(statuses),
        }
    return table


def time_series(samples: list[Sample], phase: str, t0: float) -> list[dict[str, Any]]:
    """Per second of the run (by response time): throughput and latency percentiles."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        buckets[int(s[0] + s[2] / 1000 - t0)].append(s[2])
    series = []
    for second in sorted(buckets):
        values = np.asarray(buckets[second])
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        series.append(
            {
                "t": second,
                "phase": phase,
                "rps": int(values.size),
                "p50_ms": round(float(p50), 2),
                "p95_ms": round(float(p95), 2),
                "p99_ms": round(float(p99), 2),
            }
        )
    return series


def knee(steps: list[dict[str, Any]], p99_limit_ms: float, served: float = 0.99) -> dict[str, Any] | None:
    """The highest achieved rate among the steps that hold (``holds``)."""
    passing = [s for s in steps if holds(s, p99_limit_ms, served)]
    if not passing:
        return None
    best = max(passing, key=lambda s: s["achieved_rps"])
    return {
        "achieved_rps": best["achieved_rps"],
        "offered_rps": best["offered_rps"],
        "p99_ms": best["p99_ms"],
    }


def holds(step: dict[str, Any], p99_limit_ms: float, served: float = 0.99) -> bool:
    """p99 under the limit and at least ``served`` of the offered rate served with the expected
    status: an open-model generator sends every request on schedule, so what falls short was
    refused, failed or timed out."""
    return bool(
        step["requests"]
        and step["p99_ms"] is not None
        and step["p99_ms"] < p99_limit_ms
        and step["achieved_rps"] >= served * step["offered_rps"]
    )


def samples_of(results: list[Any], endpoint: str, expected: int) -> list[Sample]:
    """vegeta's results as samples; ok means the expected status (a fast 503 is no throughput)."""
    return [
        [round(r.start, 4), endpoint, round(r.latency_ms, 2), r.code == expected, r.code] for r in results
    ]


def accepted_orders(results: list[Any]) -> list[list]:
    """[order id, epoch s the 202 arrived, customer id] of every 202 of POST /api/orders."""
    orders = []
    for r in results:
        if r.code != 202:
            continue
        body = json.loads(r.body)
        orders.append([body["id"], round(r.end, 4), body["customer_id"]])
    return orders


def step_figures(
    samples: list[Sample], offered_rps: float, measured_from: float, seconds: float
) -> dict[str, Any]:
    """One constant-rate step over its measured window (the requests sent in it): latency of every
    request, and achieved = requests served with the expected status per second of the window."""
    rows = [s for s in samples if measured_from <= s[0] < measured_from + seconds]
    served = sum(1 for s in rows if s[3])
    summary = summarize([s[2] for s in rows])
    return {
        "offered_rps": offered_rps,
        "measured_from": measured_from,
        "ended": measured_from + seconds,
        "requests": len(rows),
        "errors": len(rows) - served,
        "achieved_rps": round(served / seconds, 2) if seconds > 0 else 0.0,
        **{k: summary[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")},
    }


def accepted_within(samples: list[Sample], offered: int, phase_end: float, grace_s: float) -> dict[str, Any]:
    """The share of the orders offered in a phase that were accepted (202) while it ran: responses
    that arrived by its end plus ``grace_s`` (the last requests' own round trip)."""
    accepted = [s for s in samples if s[3]]
    in_time = sum(1 for s in accepted if s[0] + s[2] / 1000 <= phase_end + grace_s)
    return {
        "offered": offered,
        # what vegeta sent: fewer than offered when the generator itself fell behind its schedule
        "sent": len(samples),
        "accepted_in_phase": in_time,
        "accepted_late": len(accepted) - in_time,
        "fraction": round(in_time / offered, 4) if offered else None,
        "grace_s": grace_s,
    }


def _at(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["at"]).timestamp()


def saga_latencies(accepted: Iterable[list], orders: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """From the 202 (client clock) to the first final status and to the saga's decision
    (server clock: the status history; both clocks are this machine's)."""
    to_final: list[float] = []
    to_decided: list[float] = []
    outcomes: dict[str, int] = defaultdict(int)
    for order_id, accepted_at, _customer in accepted:
        order = orders.get(order_id)
        if order is None:
            continue
        outcomes[order["status"]] += 1
        history = order.get("history") or []
        final = next((h for h in history if h["status"] in FINAL), None)
        decided = next((h for h in history if h["status"] in SAGA_DECIDED), None)
        if final is not None:
            to_final.append((_at(final) - accepted_at) * 1000)
        if decided is not None:
            to_decided.append((_at(decided) - accepted_at) * 1000)
    return {
        "to_final_state": summarize(to_final),
        "to_saga_decision": summarize(to_decided),
        "outcomes": dict(outcomes),
        "to_final_state_ms": [round(v, 1) for v in to_final],
    }


#: processes that may use more than one core (the rest are one Python process each: one core at most)
MULTI_CORE = frozenset({"rabbitmq"})


def cpu_cost(steps: list[dict[str, Any]], cores: int) -> dict[str, Any] | None:
    """CPU milliseconds per request of each stack process, fitted over the steps (cores used =
    background + cost x rate), and the rates where that CPU would run out on an otherwise idle
    machine. Unlike req/s and latency, the cost hardly depends on how much CPU other workloads left."""
    points = [s for s in steps if s.get("achieved_rps")]
    if len({round(s["achieved_rps"]) for s in points}) < 2:
        return None
    rates = np.asarray([s["achieved_rps"] for s in points])
    names = {n for s in points for n in s["load"]["top_processes"] if counted_as(n) == "stack"}
    fits = {}
    for name in sorted(names):
        used = np.asarray([s["load"]["top_processes"].get(name, 0.0) for s in points])
        slope, background = np.polyfit(rates, used, 1)
        fits[name] = {
            "ms_per_request": round(float(slope) * 1000, 2),
            "background_cores": round(float(background), 3),
        }
    cost = sum(max(f["ms_per_request"], 0.0) for f in fits.values()) / 1000
    background = sum(max(f["background_cores"], 0.0) for f in fits.values())
    one_core = {
        n: round((1 - max(f["background_cores"], 0.0)) / (f["ms_per_request"] / 1000), 1)
        for n, f in fits.items()
        if n not in MULTI_CORE and f["ms_per_request"] > 0.05
    }
    binding = min(one_core.items(), key=lambda kv: kv[1]) if one_core else None
    return {
        "ms_per_request": round(cost * 1000, 2),
        "per_process": dict(sorted(fits.items(), key=lambda kv: -kv[1]["ms_per_request"])),
        # every core of the machine given to the stack (no load generator, no other workload)
        "ceiling_rps_all_cores": round((cores - background) / cost, 1) if cost > 0 else None,
        "ceiling_rps_busiest_single_process": {"process": binding[0], "rps": binding[1]} if binding else None,
    }


def counted_as(name: str) -> str:
    """Which CPU figure a watched process belongs to: "stack" (target 1's first sum), "log_pipeline"
    (added for the second), or "not_counted" (load generators, the floors' servers, Prometheus)."""
    if name.startswith(NOT_STACK) or name in MONITORING:
        return "not_counted"
    return "log_pipeline" if name in LOG_PIPELINE else "stack"


def cpu_per_order(
    before: dict[str, float],
    after: dict[str, float],
    completed: int,
    seconds: float,
    background_cores: dict[str, float] | None = None,
) -> dict[str, Any]:
    """CPU milliseconds per completed order of every process watched at both ends of the window,
    the stack's sum and the sum with the log pipeline. ``background_cores`` (cores each process used
    while nothing was asked of the stack) says how much of it the idle stack costs anyway over the
    window; it is reported, not subtracted."""
    used = {name: max(after[name] - before[name], 0.0) for name in after if name in before}

    def per_order(cpu_s: float) -> float | None:
        return round(cpu_s * 1000 / completed, 2) if completed else None

    groups: dict[str, dict[str, float | None]] = {"stack": {}, "log_pipeline": {}, "not_counted": {}}
    for name, cpu_s in sorted(used.items(), key=lambda kv: -kv[1]):
        groups[counted_as(name)][name] = per_order(cpu_s)
    stack_s = sum(cpu_s for name, cpu_s in used.items() if counted_as(name) == "stack")
    pipeline_s = sum(cpu_s for name, cpu_s in used.items() if counted_as(name) == "log_pipeline")
    background = {n: c for n, c in (background_cores or {}).items() if counted_as(n) == "stack"}
    return {
        "completed_orders": completed,
        "window_s": round(seconds, 2),
        "stack_ms": per_order(stack_s),
        "with_log_pipeline_ms": per_order(stack_s + pipeline_s),
        "per_process_ms": groups,
        "cpu_seconds": {name: round(cpu_s, 3) for name, cpu_s in used.items()},
        "background_stack_cores": round(sum(background.values()), 3)
        if background_cores is not None
        else None,
        "background_stack_ms_per_order": per_order(sum(background.values()) * seconds)
        if background_cores is not None
        else None,
    }


def payment_audit(
    orders: dict[int, dict[str, Any]], payments: dict[int, list[dict[str, Any]]] | None
) -> dict[str, Any]:
    """Every final order against its payment rows (the payments service's ledger: one row per
    charge). A DELIVERED order has exactly one, CAPTURED, of its total; a REJECTED or CANCELLED one
    keeps no money (declined, refunded or never charged); no order has two. ``payments`` None: the
    ledger could not be read, so nothing is passed."""
    if payments is None:
        return {"checked": False, "double_charged": None, "ok": False}
    delivered_not_captured, captured_not_delivered, wrong_amount, twice = [], [], [], []
    by_status: dict[str, int] = defaultdict(int)
    for order_id, order in sorted(orders.items()):
        if order["status"] not in FINAL:
            continue  # stuck: counted as such by the audit
        rows = payments.get(order_id, [])
        if len(rows) > 1:
            twice.append(order_id)
        by_status[rows[0]["status"] if rows else "none"] += 1
        captured = [r for r in rows if r["status"] == "CAPTURED"]
        if order["status"] == "DELIVERED" and not captured:
            delivered_not_captured.append(order_id)
        elif order["status"] != "DELIVERED" and captured:
            captured_not_delivered.append(order_id)
        if any(r["amount_cents"] != order["total_cents"] for r in captured):
            wrong_amount.append(order_id)
    return {
        "checked": True,
        "orders_checked": sum(by_status.values()),
        "payments_by_status": dict(by_status),
        # orders with more than one charge: customers charged twice
        "double_charged": len(twice),
        "double_charged_ids": twice[:100],
        "delivered_not_captured": delivered_not_captured[:100],
        "captured_not_delivered": captured_not_delivered[:100],
        "wrong_amount": wrong_amount[:100],
        "ok": not (twice or delivered_not_captured or captured_not_delivered or wrong_amount),
    }
