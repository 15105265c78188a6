"""What the orders use cases need from the outside world, as abstract interfaces.

The use cases see orders through a repository inside a unit of work (one transaction: the state
change, the events it emits into the outbox and the events it consumed, committed together), and
the other services through ports. ``adapters/`` implements them over SQLAlchemy and nameko RPC;
tests implement them with fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.orders.domain.pricing import PricedOrder
from services.orders.domain.saga import SagaState, Status, Step


@dataclass
class SagaRecord:
    """An order as the saga sees it: what the participants need, and the saga's bookkeeping."""

    id: int
    customer_id: int
    currency: str
    total_cents: int
    correlation_id: str | None
    tracking_number: str | None
    state: SagaState
    #: whether a step is due (False while waiting for shipping, and once over)
    active: bool = True
    #: technical failures in a row of the step that is due
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    lease_token: str | None = None
    #: why the saga was parked after too many technical failures; None while it runs
    stalled_reason: str | None = None
    #: (product_id, quantity) per line; loaded only where a step needs them
    items: tuple[tuple[int, int], ...] = field(default=())


class DuplicateRequest(Exception):
    """Another call with the same customer and request key made its order first."""


class OrderRepository(Protocol):
    def add(
        self,
        customer_id: int,
        request_key: str | None,
        priced: PricedOrder,
        correlation_id: str | None,
        now: datetime,
        first_check: datetime,
    ) -> dict[str, Any]:
        """Insert a PENDING order with its lines and first history entry; returns its view.
        Raises DuplicateRequest when the customer already used ``request_key``."""
        ...

    def by_request_key(self, customer_id: int, request_key: str) -> dict[str, Any] | None: ...

    def view(self, order_id: int) -> dict[str, Any] | None:
        """The order as callers see it: with its lines and status history."""
        ...

    def page(
        self, customer_id: int | None, status: str | None, page: int, per_page: int
    ) -> dict[str, Any]: ...

    def claim(self, order_id: int, token: str, now: datetime, until: datetime) -> SagaRecord | None:
        """Lease an order whose saga has a step due, with its lines; None if another runner
        holds it or nothing is due."""
        ...

    def lock(self, order_id: int) -> SagaRecord | None:
        """The order's saga columns, locked until commit (without its lines)."""
        ...

    def save(self, record: SagaRecord, now: datetime) -> None:
        """Write back the saga columns of ``record``."""
        ...

    def add_history(self, order_id: int, status: Status, reason: str | None, at: datetime) -> None: ...

    def kick_due(self, now: datetime, until: datetime, limit: int) -> list[tuple[int, str | None]]:
        """Orders with a step due and nobody running it, not stalled; marks them kicked until
        ``until`` and returns (id, correlation id) of each."""
        ...

    def stalled(self, limit: int) -> list[dict[str, Any]]: ...


class UnitOfWork(Protocol):
    orders: OrderRepository

    def emit(
        self,
        event_type: str,
        payload: dict[str, Any],
        aggregate_id: Any = None,
        correlation_id: str | None = None,
    ) -> Any:
        """Record an event in the outbox; it is published only if the unit of work commits."""
        ...

    def first_delivery(self, envelope: dict[str, Any]) -> bool:
        """Claim a consumed event for the handler of its type; False if it was processed already."""
        ...


#: opens a unit of work: commits when the block ends normally, rolls back when it raises
UnitOfWorkFactory = Callable[[], AbstractContextManager[UnitOfWork]]


class Catalog(Protocol):
    def products(self, product_ids: list[int]) -> list[dict[str, Any]]:
        """The products as the catalog has them now (id, sku, name, price_cents, currency, active)."""
        ...


#: what a step did for one order: None when it succeeded, the refusal reason when the participant
#: refused it for a business reason, the exception when it failed technically (retried later)
StepOutcome = str | Exception | None


class Participants(Protocol):
    def run(self, step: Step, orders: Sequence[SagaRecord]) -> list[StepOutcome]:
        """Perform ``step`` for each of ``orders`` (idempotent per order); the outcome of each, in
        order. Raises on a technical failure of the whole call: the step is then retried later for
        every one of them."""
        ...
