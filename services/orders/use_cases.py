"""The orders use cases: placing, reading and cancelling orders, and running their sagas.

Each takes a unit-of-work factory (``ports.UnitOfWorkFactory``) and the ports it needs, so it runs
against SQLAlchemy and RPC in the service and against fakes in the unit tests.

The saga runner claims an order with a lease (so two runners, in one process or in two, never run
one order at once), performs the due step through the participants port outside any transaction,
and records the outcome in one transaction that also decides and leases the next step: one
transaction per step. A step that fails technically is retried with backoff by the recovery timer;
after ``RetryPolicy.max_attempts`` failures in a row the saga is parked as stalled, with the
reason, until an operator resumes it. A crash leaves the lease to expire and the timer resumes the
order; participants are idempotent per order, so the step that was in flight is never repeated in
effect.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from services.orders.domain import saga
from services.orders.domain.errors import NotStalled, OrderNotFound
from services.orders.domain.pricing import PricedOrder, price_order
from services.orders.domain.saga import STATUS_EVENTS, RetryPolicy, Status, Step
from services.orders.ports import (
    Catalog,
    DuplicateRequest,
    Participants,
    SagaRecord,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)
#: how long after creation (or a cancellation request) the recovery timer considers an untouched
#: order stuck and resumes it
FIRST_CHECK = timedelta(seconds=5)
#: how long a recovery kick keeps the timer from kicking the same order again
KICK_GRACE = timedelta(seconds=10)

Clock = Callable[[], datetime]


def order_event(record: SagaRecord) -> dict[str, Any]:
    """The payload of a status event (order_created adds the priced lines)."""
    payload: dict[str, Any] = {
        "order_id": record.id,
        "customer_id": record.customer_id,
        "status": record.state.status.value,
        "total_cents": record.total_cents,
        "currency": record.currency,
        "reason": record.state.reason,
    }
    if record.tracking_number:
        payload["tracking_number"] = record.tracking_number
    return payload


def _created_event(order_id: int, customer_id: int, priced: PricedOrder) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": Status.PENDING.value,
        "total_cents": priced.total_cents,
        "currency": priced.currency,
        "reason": None,
        "items": [
            {
                "product_id": line.product_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in priced.lines
        ],
    }


def _apply(
    uow: UnitOfWork, record: SagaRecord, transition: Callable[..., Status | None], *args: Any, now: datetime
) -> Status | None:
    """Run a saga transition on ``record`` and record the status it reached, if any."""
    new_status = transition(record.state, *args)
    record.active = saga.next_step(record.state) is not None
    if new_status is not None:
        uow.orders.add_history(record.id, new_status, record.state.reason, now)
        uow.emit(STATUS_EVENTS[new_status], order_event(record), aggregate_id=record.id)
    return new_status


def _release(record: SagaRecord) -> None:
    record.lease_until = record.lease_token = None


def place_order(
    uow: UnitOfWorkFactory,
    catalog: Catalog,
    customer_id: int,
    quantities: dict[int, int],
    request_key: str | None,
    correlation_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Accept an order as PENDING (the saga takes it from there).

    ``request_key`` makes a retry safe: a caller that timed out and calls again with the same key
    gets the order the first call made instead of a second one.
    """
    if request_key is not None:
        existing = _by_request_key(uow, customer_id, request_key)
        if existing is not None:
            return existing
    priced = price_order(quantities, catalog.products(list(quantities)))
    try:
        with uow() as tx:
            view = tx.orders.add(customer_id, request_key, priced, correlation_id, now, now + FIRST_CHECK)
            tx.emit("order_created", _created_event(view["id"], customer_id, priced), aggregate_id=view["id"])
            return view
    except DuplicateRequest:
        # a concurrent call with the same key committed first: its order is the answer
        assert request_key is not None
        existing = _by_request_key(uow, customer_id, request_key)
        if existing is None:
            raise
        return existing


def _by_request_key(uow: UnitOfWorkFactory, customer_id: int, request_key: str) -> dict[str, Any] | None:
    with uow() as tx:
        return tx.orders.by_request_key(customer_id, request_key)


def get_order(uow: UnitOfWorkFactory, order_id: int, customer_id: int | None = None) -> dict[str, Any]:
    """The order; another customer's order is reported as not found."""
    with uow() as tx:
        view = tx.orders.view(order_id)
    if view is None or (customer_id is not None and view["customer_id"] != customer_id):
        raise OrderNotFound(f"order {order_id} not found")
    return view


def list_orders(
    uow: UnitOfWorkFactory, customer_id: int | None, status: str | None, page: int, per_page: int
) -> dict[str, Any]:
    with uow() as tx:
        return tx.orders.page(customer_id, status, page, per_page)


def _locked(tx: UnitOfWork, order_id: int, customer_id: int | None = None) -> SagaRecord:
    record = tx.orders.lock(order_id)
    if record is None or (customer_id is not None and record.customer_id != customer_id):
        raise OrderNotFound(f"order {order_id} not found")
    return record


def cancel_order(
    uow: UnitOfWorkFactory, order_id: int, customer_id: int | None, reason: str, now: datetime
) -> dict[str, Any]:
    """Ask for the order's cancellation; its saga compensates what it did (CannotCancel once shipped)."""
    with uow() as tx:
        record = _locked(tx, order_id, customer_id)
        if saga.request_cancel(record.state, reason):
            record.active = True
            # compensating is a new course: a saga stalled on a forward step gets going again
            record.stalled_reason, record.attempts = None, 0
            record.next_attempt_at = now + FIRST_CHECK
            tx.orders.save(record, now)
            tx.emit(
                "order_cancellation_requested",
                {"order_id": record.id, "customer_id": record.customer_id, "reason": reason},
                aggregate_id=record.id,
            )
        view = tx.orders.view(order_id)
    assert view is not None
    return view


#: shipping's events and the saga transition each one makes
SHIPPING_TRANSITIONS: dict[str, Callable[[saga.SagaState], Status | None]] = {
    "shipment_shipped": saga.shipped,
    "shipment_delivered": saga.delivered,
}


def record_shipping(uow: UnitOfWorkFactory, envelopes: Sequence[dict[str, Any]], now: datetime) -> list[int]:
    """Shipping reported parcels leaving (or arriving): move each order on, once per event, all in
    one unit of work. Returns the indices of the events about orders that do not exist: they can
    never apply, and the others must not wait on them."""
    unknown = []
    with uow() as tx:
        for index, envelope in enumerate(envelopes):
            payload = envelope["payload"]
            record = tx.orders.lock(payload["order_id"])
            if record is None:
                unknown.append(index)
                continue
            if not tx.first_delivery(envelope):
                continue
            record.tracking_number = payload.get("tracking_number") or record.tracking_number
            _apply(tx, record, SHIPPING_TRANSITIONS[envelope["type"]], now=now)
            tx.orders.save(record, now)
    return unknown


def kick_due(uow: UnitOfWorkFactory, now: datetime, limit: int = 100) -> list[tuple[int, str | None]]:
    """The orders the recovery timer resumes now, with the correlation id each carries."""
    with uow() as tx:
        return tx.orders.kick_due(now, now + KICK_GRACE, limit)


def stalled_orders(uow: UnitOfWorkFactory, limit: int = 100) -> list[dict[str, Any]]:
    with uow() as tx:
        return tx.orders.stalled(limit)


def resume_stalled(uow: UnitOfWorkFactory, order_id: int, now: datetime) -> dict[str, Any]:
    """An operator's go-ahead: the stalled step is retried at the recovery timer's next tick."""
    with uow() as tx:
        record = _locked(tx, order_id)
        if record.stalled_reason is None:
            raise NotStalled(f"order {order_id} is not stalled")
        record.stalled_reason = None
        record.attempts = 0
        record.next_attempt_at = now
        tx.orders.save(record, now)
        view = tx.orders.view(order_id)
    assert view is not None
    return view


class SagaRunner:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        participants: Participants,
        clock: Clock,
        policy: RetryPolicy | None = None,
    ):
        self.uow = uow
        self.participants = participants
        self.clock = clock
        self.policy = policy or RetryPolicy()

    def advance(self, order_id: int) -> None:
        """Run steps until the saga waits, ends, or a step must be retried later."""
        token = uuid.uuid4().hex
        with self.uow() as tx:
            now = self.clock()
            record = tx.orders.claim(order_id, token, now, now + LEASE)
            if record is None:
                return  # another runner has it, nothing is due, or it is gone
            step = saga.next_step(record.state)
            if step is None:
                # a cancellation with nothing to undo ends here
                _apply(tx, record, saga.settle, now=now)
                record.active = False
                _release(record)
                tx.orders.save(record, now)
                return
        while step is not None:
            try:
                refusal = self.participants.run(step, record)
            except Exception as exc:  # any technical failure: retry the same step later
                self._failed(order_id, step, exc)
                return
            step = self._record_outcome(order_id, token, step, refusal)

    def _record_outcome(self, order_id: int, token: str, step: Step, refusal: str | None) -> Step | None:
        """Record what ``step`` did and lease the next step in the same transaction; the next step,
        or None when the saga waits or is over."""
        with self.uow() as tx:
            now = self.clock()
            # read again: a cancellation may have been requested while the step ran
            record = _locked(tx, order_id)
            if refusal is None:
                _apply(tx, record, saga.complete, step, now=now)
            else:
                _apply(tx, record, saga.refuse, step, refusal, now=now)
            record.attempts = 0
            record.next_attempt_at = None
            following = saga.next_step(record.state) if record.active else None
            if following is None:  # waiting for shipping, or over: let go of the order
                _release(record)
            else:
                record.lease_until, record.lease_token = now + LEASE, token
            tx.orders.save(record, now)
        return following

    def _failed(self, order_id: int, step: Step, exc: Exception) -> None:
        with self.uow() as tx:
            now = self.clock()
            record = _locked(tx, order_id)
            record.attempts += 1
            _release(record)
            if self.policy.stalls(record.attempts):
                record.stalled_reason = f"{step.value} failed {record.attempts} times; last: {exc}"[:500]
                record.next_attempt_at = None
            else:
                record.next_attempt_at = now + self.policy.delay(record.attempts)
            tx.orders.save(record, now)
        if record.stalled_reason:
            log.error("order %s: saga stalled: %s", order_id, record.stalled_reason)
        else:
            log.warning(
                "order %s: %s failed (%s); attempt %d, retrying in %ss",
                order_id,
                step,
                exc,
                record.attempts,
                self.policy.delay(record.attempts).total_seconds(),
            )
