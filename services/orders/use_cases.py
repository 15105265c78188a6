"""The orders use cases: placing, reading and cancelling orders, and running their sagas.

Each takes a unit-of-work factory (``ports.UnitOfWorkFactory``) and the ports it needs, so it runs
against SQLAlchemy and RPC in the service and against fakes in the unit tests.

The saga runner claims orders with a lease (so two runners, in one process or in two, never run
one order at once), performs the due step through the participants port outside any transaction,
and records the outcome in one transaction that also decides and leases the next step. Orders
advance together: the orders created within a moment are claimed in one transaction, each forward
step goes to its participant in one call for all of them (which answers per order), and one
transaction records a round's outcomes. A step that fails technically is retried with backoff by
the recovery timer; after ``RetryPolicy.max_attempts`` failures in a row the saga is parked as
stalled, with the reason, until an operator resumes it. A crash leaves the lease to expire and the
timer resumes the order; participants are idempotent per order, so the step that was in flight is
never repeated in effect.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from services.orders.domain import saga
from services.orders.domain.errors import InvalidOrder, NotStalled, OrderNotFound
from services.orders.domain.pricing import PricedOrder, price_order
from services.orders.domain.saga import STATUS_EVENTS, RetryPolicy, Status, Step
from services.orders.ports import (
    Catalog,
    DuplicateRequest,
    Participants,
    SagaRecord,
    StepOutcome,
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
        # the order's own correlation id: a batch of orders runs in one worker, which has none
        uow.emit(STATUS_EVENTS[new_status], order_event(record), aggregate_id=record.id,
                 correlation_id=record.correlation_id)
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
    gets the order the first call made instead of a second one. A retry is rare, so the key is not
    looked up first (that was a transaction per order): the unique key refuses the second insert,
    and only then is the first order read.
    """
    try:
        priced = price_order(quantities, catalog.products(list(quantities)))
        with uow() as tx:
            view = tx.orders.add(customer_id, request_key, priced, correlation_id, now, now + FIRST_CHECK)
            tx.emit("order_created", _created_event(view["id"], customer_id, priced), aggregate_id=view["id"])
            return view
    except (DuplicateRequest, InvalidOrder):
        # a retry whose first call made the order gets that order, even when its lines would be
        # refused now (a product withdrawn since)
        existing = None if request_key is None else _by_request_key(uow, customer_id, request_key)
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

    def advance(self, order_ids: Sequence[int]) -> dict[int, Status]:
        """Run the due steps of these orders' sagas until each waits, ends, or must be retried later;
        the status each order this runner claimed reached.

        The orders move together: the orders due for the same step go to the participants in one
        call, and one transaction records the outcomes of a round and leases the next steps.
        """
        token = uuid.uuid4().hex
        records: dict[int, SagaRecord] = {}
        due: dict[int, Step] = {}
        reached: dict[int, Status] = {}
        with self.uow() as tx:
            now = self.clock()
            for order_id in dict.fromkeys(order_ids):  # once each, though an event came twice
                record = tx.orders.claim(order_id, token, now, now + LEASE)
                if record is None:
                    continue  # another runner has it, nothing is due, or it is gone
                step = saga.next_step(record.state)
                if step is None:
                    # a cancellation with nothing to undo ends here
                    _apply(tx, record, saga.settle, now=now)
                    record.active = False
                    _release(record)
                    tx.orders.save(record, now)
                else:
                    records[order_id], due[order_id] = record, step
                reached[order_id] = record.state.status
        while due:
            outcomes: dict[int, StepOutcome] = {}
            for step in dict.fromkeys(due.values()):
                orders = [records[order_id] for order_id, order_step in due.items() if order_step is step]
                try:
                    results: list[StepOutcome] = list(self.participants.run(step, orders))
                except Exception as exc:  # any technical failure: retry the same step later
                    results = [exc] * len(orders)
                outcomes.update(zip([order.id for order in orders], results, strict=True))
            due = self._record_outcomes(token, due, outcomes, records, reached)
        return reached

    def _record_outcomes(
        self,
        token: str,
        due: dict[int, Step],
        outcomes: dict[int, StepOutcome],
        records: dict[int, SagaRecord],
        reached: dict[int, Status],
    ) -> dict[int, Step]:
        """Record what a round's steps did and lease the next steps, all in one transaction; the
        next step of each order that has one (none when its saga waits, is over, or failed)."""
        following: dict[int, Step] = {}
        failures = []
        with self.uow() as tx:
            now = self.clock()
            for order_id, step in due.items():
                # read again: a cancellation may have been requested while the step ran
                record = _locked(tx, order_id)
                record.items = records[order_id].items
                records[order_id] = record
                outcome = outcomes[order_id]
                if isinstance(outcome, Exception):
                    self._failed(record, step, outcome, now)
                    failures.append((record, step, outcome))
                else:
                    if outcome is None:
                        _apply(tx, record, saga.complete, step, now=now)
                    else:
                        _apply(tx, record, saga.refuse, step, outcome, now=now)
                    record.attempts = 0
                    record.next_attempt_at = None
                    next_step = saga.next_step(record.state) if record.active else None
                    if next_step is None:  # waiting for shipping, or over: let go of the order
                        _release(record)
                    else:
                        record.lease_until, record.lease_token = now + LEASE, token
                        following[order_id] = next_step
                tx.orders.save(record, now)
                reached[order_id] = record.state.status
        for record, step, exc in failures:
            self._log_failure(record, step, exc)
        return following

    def _failed(self, record: SagaRecord, step: Step, exc: Exception, now: datetime) -> None:
        """Count a technical failure of ``step``: retried after a backoff, or parked as stalled."""
        record.attempts += 1
        _release(record)
        if self.policy.stalls(record.attempts):
            record.stalled_reason = f"{step.value} failed {record.attempts} times; last: {exc}"[:500]
            record.next_attempt_at = None
        else:
            record.next_attempt_at = now + self.policy.delay(record.attempts)

    def _log_failure(self, record: SagaRecord, step: Step, exc: Exception) -> None:
        # under the order's own ids: the orders of a batch share one worker
        ids = {"order_id": record.id, "correlation_id": record.correlation_id}
        if record.stalled_reason:
            log.error("order %s: saga stalled: %s", record.id, record.stalled_reason, extra=ids)
        else:
            log.warning(
                "order %s: %s failed (%s); attempt %d, retrying in %ss",
                record.id,
                step,
                exc,
                record.attempts,
                self.policy.delay(record.attempts).total_seconds(),
                extra=ids,
            )
