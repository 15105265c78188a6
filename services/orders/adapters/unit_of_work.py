"""The orders unit of work over the service's Store: one transaction with the outbox and inbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from services.common.batch_events import handler_name
from services.common.store import StoreWrapper
from services.orders.adapters.repository import SqlOrderRepository


class SqlUnitOfWork:
    def __init__(self, tx: Any):
        self.orders = SqlOrderRepository(tx.session)
        self.emit = tx.emit
        self._tx = tx

    def first_delivery(self, envelope: dict[str, Any]) -> bool:
        # claimed under the handler each event type had before they were consumed in batches
        return self._tx.first_delivery(envelope, handler=handler_name(envelope["type"]))


def unit_of_work(store: StoreWrapper) -> Any:
    """A ``ports.UnitOfWorkFactory`` for one worker's store."""

    @contextmanager
    def open_unit_of_work() -> Iterator[SqlUnitOfWork]:
        with store.transaction() as tx:
            yield SqlUnitOfWork(tx)

    return open_unit_of_work
