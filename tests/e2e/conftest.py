"""End-to-end fixtures: the real stack that scripts/test.sh started.

The tests reach it the way a user does from a Python shell: nameko's
standalone RPC proxy, supervisorctl for the processes, the broker itself.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from tests.helpers import wait_for  # noqa: F401  (re-exported: e2e modules may import it from here)

ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = Path(os.environ.get("STACK_DIR", ROOT / "var" / "e2e"))
VHOST = os.environ.get("STACK_VHOST", "e2e")
AMQP_URI = f"pyamqp://guest:guest@localhost:5672/{VHOST}"
CONFIG = {"AMQP_URI": AMQP_URI}


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if not (STACK_DIR / "supervisor.sock").exists():
        raise pytest.UsageError(
            "the end-to-end tests need the stack that `make test` starts (scripts/test.sh)"
        )


@pytest.fixture(scope="session")
def rpc() -> Iterator[Any]:
    with ClusterRpcProxy(CONFIG, timeout=30) as proxy:
        yield proxy


def supervisorctl(*args: str) -> str:
    env = {**os.environ, "STACK_DIR": str(STACK_DIR), "VENV": str(ROOT / ".venv")}
    command = [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(ROOT / "scripts/supervisord.conf"), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    return result.stdout.strip()


def query(service: str, sql: str, *params: Any) -> list[tuple]:
    """Read a service's own database, for checks no RPC exposes (row counts)."""
    with sqlite3.connect(STACK_DIR / "data" / f"{service}.db") as connection:
        return connection.execute(sql, params).fetchall()


FINAL = {"DELIVERED", "REJECTED", "CANCELLED"}


@pytest.fixture
def customer(rpc: Any) -> dict:
    email = f"e2e-{time.time_ns()}@example.com"
    return rpc.customers.register({"name": "E2E Shopper", "email": email, "password": "correct-horse-9"})


@pytest.fixture
def new_product(rpc: Any) -> Callable[..., dict]:
    def make(stock: int, price_cents: int = 500, currency: str = "USD") -> dict:
        product = rpc.catalog.create_product({
            "sku": f"E2E-{time.time_ns()}", "name": "E2E item", "category": "e2e",
            "price_cents": price_cents, "currency": currency,
        })
        rpc.inventory.set_stock(product["id"], stock)
        return product

    return make
