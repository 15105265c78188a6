"""Helpers the integration and end-to-end tests share.

Plain functions, not fixtures: import them where they are needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kombu import Connection, Producer
from sqlalchemy import Engine, MetaData, create_engine, func, select

from services.common.messaging import dead_letter_topology
from services.common.outbox import event_exchange
from services.common.store import messaging_tables

#: the outbox table every service's database has (same definition as the services use)
OUTBOX, _ = messaging_tables(MetaData())


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Raises AssertionError naming ``what`` once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def publish_event(amqp_uri: str, envelope: dict) -> None:
    """Publish ``envelope`` like the outbox relay does, and wait for the broker's confirm.

    JSON, persistent, on the ``<source>.events`` exchange, keyed by the event type.
    """
    exchange = event_exchange(envelope["source"])
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        Producer(connection.channel()).publish(
            envelope, exchange=exchange, routing_key=envelope["type"], serializer="json",
            delivery_mode=2, declare=[exchange], retry=True,
        )


def dead_lettered_ids(rabbit_config: dict, expected: int, timeout: float = 10) -> set[str]:
    """Drain the dead-letters queue until ``expected`` messages arrived; their event ids."""
    found: set[str] = set()
    _, queue = dead_letter_topology()
    deadline = time.monotonic() + timeout
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        bound = queue(connection.channel())
        while len(found) < expected and time.monotonic() < deadline:
            message = bound.get(no_ack=True)
            if message is None:
                time.sleep(0.05)
            else:
                found.add(message.decode()["event_id"])
    return found


@contextmanager
def service_database(container: Any) -> Iterator[Engine]:
    """An engine on a running service container's own database, disposed afterwards."""
    engine = create_engine(container.config["DB_URIS"][f"{container.service_name}:Base"])
    try:
        yield engine
    finally:
        engine.dispose()


def service_rows(container: Any, statement: Any) -> list[Any]:
    """Read a service's database directly: what no RPC shows (rows, outbox)."""
    with service_database(container) as engine, engine.connect() as connection:
        return connection.execute(statement).all()


def row_count(container: Any, table: Any) -> int:
    """How many rows ``table`` (a model or a Table) has in the service's database."""
    return service_rows(container, select(func.count()).select_from(table))[0][0]


def emitted_correlation_ids(container: Any) -> list[tuple[str, str | None]]:
    """``(event_type, correlation_id)`` of every event in the service's outbox, oldest first."""
    return [(row.event_type, row.envelope.get("correlation_id"))
            for row in service_rows(container, select(OUTBOX).order_by(OUTBOX.c.id))]


def emitted_events(container: Any) -> list[tuple[str, dict]]:
    """``(event_type, payload)`` of every event in the service's outbox, oldest first."""
    return [(row.event_type, row.envelope["payload"])
            for row in service_rows(container, select(OUTBOX).order_by(OUTBOX.c.id))]
