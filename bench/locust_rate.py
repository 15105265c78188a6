"""Constant request rates, stepped: the knee search and the steady saga load.

``RateSteps`` offers each rate of BENCH_RATES (requests/s) for
BENCH_WARMUP_SECONDS + BENCH_STEP_SECONDS with ceil(rate / BENCH_PER_USER_RATE)
users, each pacing itself at rate / users requests/s (like locust's
constant_throughput, with the pace changing from step to step), and stops
after the first step that fails (p99 at or over BENCH_STOP_P99_MS, fewer than
90% of the offered requests done, or 1% errors) once BENCH_MIN_STEPS (3) steps have run,
unless BENCH_STOP_P99_MS is 0.
A user that falls behind (a response slower than its pacing interval) sends its
next request at once, so an overloaded step shows up as a shortfall in the
rate achieved as well as in the latency.

Users log in with customers the orchestrator registered and logged in before the
run (BENCH_CUSTOMERS, a JSON file), so no step measures password hashing.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from locust import LoadTestShape, task
from locust.contrib.fasthttp import FastHttpUser

from bench.locust_common import RECORDS, place_order, random_product

RATES = [float(r) for r in os.environ.get("BENCH_RATES", "10").split(",") if r]
STEP_SECONDS = float(os.environ.get("BENCH_STEP_SECONDS", "10"))
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", "2"))
PER_USER_RATE = float(os.environ.get("BENCH_PER_USER_RATE", "5"))
STOP_P99_MS = float(os.environ.get("BENCH_STOP_P99_MS", "100"))
MIN_STEPS = int(os.environ.get("BENCH_MIN_STEPS", "3"))
ENDPOINT = os.environ.get("BENCH_ENDPOINT", "GET /api/products/<id>")
CUSTOMERS = (
    json.loads(Path(os.environ["BENCH_CUSTOMERS"]).read_text()) if os.environ.get("BENCH_CUSTOMERS") else []
)
_next_customer = iter(range(10**9))
#: seconds between two requests of one user in the current step (RateSteps sets it)
PACE = {"interval": 1.0}


def paced(user: Any) -> float:
    """Wait so that the user starts a request every PACE interval, whatever the last one took
    (one that fell behind starts the next at once, without a catch-up burst)."""
    now = time.monotonic()
    user.next_start = max(getattr(user, "next_start", now) + PACE["interval"], now)
    return user.next_start - now


def stagger(user: Any) -> None:
    """Spread new users' first requests over one interval instead of sending them all at once."""
    time.sleep(random.uniform(0, PACE["interval"]))  # gevent-patched in locust: only this user waits
    user.next_start = time.monotonic()


class ProductDetailUser(FastHttpUser):
    wait_time = paced

    def on_start(self) -> None:
        stagger(self)

    @task
    def product_detail(self) -> None:
        self.client.get(f"/api/products/{random_product()}", name="GET /api/products/<id>")


class PlaceOrderUser(FastHttpUser):
    wait_time = paced

    def on_start(self) -> None:
        customer = CUSTOMERS[next(_next_customer) % len(CUSTOMERS)]
        self.customer_id = customer["id"]
        self.headers = {"Authorization": f"Bearer {customer['token']}"}
        stagger(self)

    @task
    def place_order(self) -> None:
        place_order(self, self.headers, self.customer_id)


def step_figures(rate: float, start: float, end: float) -> dict:
    """Latency and achieved rate of the requests started in [start, end)."""
    rows = [s for s in RECORDS["samples"] if s[1] == ENDPOINT and start <= s[0] < end]
    latencies = np.asarray([s[2] for s in rows]) if rows else np.asarray([0.0])
    errors = sum(1 for s in rows if not s[3])
    # served, not merely answered: a fast 503 from an open breaker is no throughput
    achieved = (len(rows) - errors) / (end - start)
    p99 = float(np.percentile(latencies, 99))
    passed = (
        bool(rows)
        and achieved >= 0.9 * rate
        and errors <= 0.01 * len(rows)
        and (STOP_P99_MS <= 0 or p99 < STOP_P99_MS)
    )
    return {
        "requests": len(rows),
        "errors": errors,
        "achieved_rps": round(achieved, 2),
        "p99_ms": round(p99, 2),
        "passed": passed,
    }


class RateSteps(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.index = 0
        self.step_started: float | None = None
        self.epoch_started = 0.0

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        if self.step_started is None:
            self._begin(run_time)
        elif run_time - self.step_started >= WARMUP_SECONDS + STEP_SECONDS:
            now = time.time()
            rate = RATES[self.index]
            measured_from = self.epoch_started + WARMUP_SECONDS
            figures = step_figures(rate, measured_from, now)
            RECORDS["steps"].append(
                {
                    "offered_rps": rate,
                    "users": self._users(rate),
                    "started": self.epoch_started,
                    "measured_from": measured_from,
                    "ended": now,
                    **figures,
                }
            )
            self.index += 1
            # at least MIN_STEPS steps even when an early one fails (on a busy machine a low rate can
            # fail too): the CPU cost per request is fitted over the steps
            failed = STOP_P99_MS > 0 and not figures["passed"] and self.index >= MIN_STEPS
            if self.index >= len(RATES) or failed:
                return None
            self._begin(run_time)
        rate = RATES[self.index]
        users = self._users(rate)
        PACE["interval"] = users / rate
        return users, float(users)

    def _begin(self, run_time: float) -> None:
        self.step_started = run_time
        self.epoch_started = time.time()

    @staticmethod
    def _users(rate: float) -> int:
        return max(1, math.ceil(rate / PER_USER_RATE))
