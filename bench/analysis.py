"""From raw records to figures: per-endpoint tables, time series, knees, saga latencies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np

from bench.stack import FINAL
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


def knee(steps: list[dict[str, Any]], p99_limit_ms: float) -> dict[str, Any] | None:
    """The highest achieved rate among steps that kept p99 under the limit, did 90% of the
    offered requests and had at most 1% errors."""
    passing = [
        s
        for s in steps
        if s["requests"]
        and s["p99_ms"] < p99_limit_ms
        and s["achieved_rps"] >= 0.9 * s["offered_rps"]
        and s["errors"] <= 0.01 * s["requests"]
    ]
    if not passing:
        return None
    best = max(passing, key=lambda s: s["achieved_rps"])
    return {
        "achieved_rps": best["achieved_rps"],
        "offered_rps": best["offered_rps"],
        "p99_ms": best["p99_ms"],
    }


def step_table(steps: list[dict[str, Any]], samples: list[Sample], endpoint: str) -> list[dict[str, Any]]:
    """Each step's full latency summary over its measured window (after the warm-up)."""
    table = []
    for step in steps:
        rows = [s for s in samples if s[1] == endpoint and step["measured_from"] <= s[0] < step["ended"]]
        summary = summarize([r[2] for r in rows])
        table.append(
            {
                **step,
                "p50_ms": summary["p50_ms"],
                "p95_ms": summary["p95_ms"],
                "p99_ms": summary["p99_ms"] if rows else step["p99_ms"],
                "max_ms": summary["max_ms"],
            }
        )
    return table


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
    names = {n for s in points for n in s["load"]["top_processes"] if not n.startswith(("locust", "hello"))}
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
