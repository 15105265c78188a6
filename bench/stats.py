"""Percentiles and summaries of latency samples (milliseconds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def summarize(ms: Sequence[float]) -> dict[str, Any]:
    """count, mean, p50/p90/p95/p99 and max of latencies in ms (None for an empty set)."""
    if not len(ms):
        return {"count": 0, "mean_ms": None, "max_ms": None, **{f"p{p}_ms": None for p in PERCENTILES}}
    values = np.asarray(ms, dtype=float)
    summary: dict[str, Any] = {"count": int(values.size), "mean_ms": round(float(values.mean()), 3)}
    for p, value in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
        summary[f"p{p}_ms"] = round(float(value), 3)
    summary["max_ms"] = round(float(values.max()), 3)
    return summary
