"""What every benchmark locustfile shares: the run's products, its records, and writing them out.

Locust runs in its own process (gevent); the orchestrator (bench.run) passes
its settings in the environment and reads back one JSON file (``BENCH_OUT``):
every request as ``[start epoch s, endpoint, latency ms, ok, HTTP status]``,
every accepted order as ``[order id, epoch s the 202 arrived, customer id]``,
the customers the run created, and for rate-stepped runs the steps.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

from locust import events
from locust.contrib.fasthttp import FastHttpUser

PRODUCTS: list[int] = json.loads(os.environ.get("BENCH_PRODUCTS", "[1]"))
RECORDS: dict[str, list[Any]] = {"samples": [], "orders": [], "customers": [], "steps": [], "user_errors": []}
PASSWORD = "bench-password-1"


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: Exception | None = None,
    start_time: float | None = None,
    response: Any = None,
    **_kwargs: Any,
) -> None:
    status = getattr(response, "status_code", 0) or 0
    RECORDS["samples"].append(
        [round(start_time or time.time(), 4), name, round(response_time, 2), exception is None, status]
    )


@events.quitting.add_listener
def _write(environment: Any, **_kwargs: Any) -> None:
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps(RECORDS))


def random_product() -> int:
    return random.choice(PRODUCTS)


def place_order(user: FastHttpUser, headers: dict[str, str], customer_id: int) -> int | None:
    """POST /api/orders for one unit; records the order when it is accepted (202)."""
    with user.client.post(
        "/api/orders",
        json={"product_id": random_product(), "quantity": 1},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        name="POST /api/orders",
        catch_response=True,
    ) as response:
        if response.status_code != 202:
            response.failure(f"HTTP {response.status_code}")
            return None
        order_id = response.json()["id"]
        RECORDS["orders"].append([order_id, round(time.time(), 4), customer_id])
        return order_id
