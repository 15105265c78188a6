"""Runs the saga: persists its state around every step a participant performs.

Each pass claims the order with a lease (so two runners, in one process or
in two replicas, never run the same order at once), asks the state machine
for the next step, performs it over RPC outside any transaction, and records
the outcome in a new transaction together with the events it causes. A step
that fails for a technical reason (a participant down, the broker gone) is
retried with backoff by the recovery timer; a crash leaves the lease to
expire and the timer resumes the order.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from services.common.errors import InternalError, NotFound, ServiceError
from services.common.store import UnitOfWork, utcnow
from services.orders import saga
from services.orders.models import Order, StatusChange
from services.orders.saga import STATUS_EVENTS, Status, Step

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)
#: how long after creation the recovery timer considers an untouched order stuck
FIRST_CHECK = timedelta(seconds=5)
MAX_BACKOFF_SECONDS = 30


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class OrderSnapshot:
    """What the participants need to know about an order."""

    id: int
    customer_id: int
    currency: str
    total_cents: int
    items: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, order: Order) -> OrderSnapshot:
        return cls(order.id, order.customer_id, order.currency, order.total_cents,
                   tuple((item.product_id, item.quantity) for item in order.items))


class Participants:
    """The services the saga commands, each idempotent per order."""

    def __init__(self, inventory: Any, payments: Any, shipping: Any):
        self.inventory = inventory
        self.payments = payments
        self.shipping = shipping

    def run(self, step: Step, order: OrderSnapshot) -> str | None:
        """Perform ``step``; returns a refusal reason, or None when it succeeded."""
        try:
            return self._perform(step, order)
        except ServiceError as exc:
            if step in saga.REFUSABLE and not exc.transient and not isinstance(exc, InternalError):
                return str(exc)
            raise

    def _perform(self, step: Step, order: OrderSnapshot) -> str | None:
        if step is Step.RESERVE_STOCK:
            items = [{"product_id": product_id, "quantity": quantity} for product_id, quantity in order.items]
            self.inventory.call("reserve", order.id, items)
        elif step is Step.CHARGE_PAYMENT:
            payment = self.payments.call("charge", order.id, order.customer_id, order.total_cents,
                                         order.currency)
            if payment["status"] == "DECLINED":
                return f"payment declined: {payment['decline_reason']}"
        elif step is Step.COMMIT_STOCK:
            self.inventory.call("commit", order.id)
        elif step is Step.REQUEST_SHIPMENT:
            self.shipping.call("schedule_shipment", order.id, order.customer_id)
        elif step is Step.CANCEL_SHIPMENT:
            self.shipping.call("cancel_shipment", order.id)
        elif step is Step.REFUND_PAYMENT:
            self.payments.call("refund", order.id)
        elif step is Step.RELEASE_STOCK:
            self.inventory.call("release", order.id)
        return None


def load_for_update(session: Session, order_id: int, customer_id: int | None = None) -> Order:
    """The order, locked until commit on PostgreSQL; NotFound hides others' orders."""
    order = session.scalars(select(Order).where(Order.id == order_id).with_for_update()).first()
    if order is None or (customer_id is not None and order.customer_id != customer_id):
        raise NotFound(f"order {order_id} not found")
    return order


def order_event(order: Order) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "order_id": order.id,
        "customer_id": order.customer_id,
        "status": order.status,
        "total_cents": order.total_cents,
        "currency": order.currency,
        "reason": order.reason,
    }
    if order.tracking_number:
        payload["tracking_number"] = order.tracking_number
    if order.status == Status.PENDING:
        payload["items"] = [
            {"product_id": item.product_id, "sku": item.sku, "quantity": item.quantity,
             "unit_price_cents": item.unit_price_cents}
            for item in order.items
        ]
    return payload


def record_status(tx: UnitOfWork, order: Order, status: Status) -> None:
    """Append to the history and announce the change, in the caller's transaction."""
    order.history.append(StatusChange(status=status.value, reason=order.reason, at=utcnow()))
    tx.session.flush()
    tx.emit(STATUS_EVENTS[status], order_event(order), aggregate_id=order.id)


def apply_to_order(tx: UnitOfWork, order: Order, transition: Any, *args: Any) -> Status | None:
    """Run a saga transition on the persisted state and record what it changed."""
    state = order.saga
    new_status = transition(state, *args)
    order.saga = state
    order.saga_active = saga.next_step(state) is not None
    if new_status is not None:
        record_status(tx, order, new_status)
    return new_status


class SagaRunner:
    def __init__(self, store: Any, participants: Participants):
        self.store = store
        self.participants = participants

    def advance(self, order_id: int) -> None:
        """Run steps until the saga waits, ends, or a step must be retried later."""
        token = uuid.uuid4().hex
        while True:
            with self.store.transaction() as tx:
                if not self._claim(tx.session, order_id, token):
                    return  # another runner has it, or it is gone
                order = load_for_update(tx.session, order_id)
                step = saga.next_step(order.saga)
                if step is None:
                    apply_to_order(tx, order, saga.settle)  # a cancellation with nothing to undo ends here
                    order.saga_active = False
                    order.lease_until = order.lease_token = None
                    return
                snapshot = OrderSnapshot.of(order)
            try:
                refusal = self.participants.run(step, snapshot)
            except Exception as exc:  # any technical failure: retry the same step later
                self._retry_later(order_id, step, exc)
                return
            with self.store.transaction() as tx:
                order = load_for_update(tx.session, order_id)
                if refusal is None:
                    apply_to_order(tx, order, saga.complete, step)
                else:
                    apply_to_order(tx, order, saga.refuse, step, refusal)
                order.attempts = 0
                order.next_attempt_at = None
                if not order.saga_active:  # waiting for shipping, or over: let go of the order
                    order.lease_until = order.lease_token = None
                    return

    def _claim(self, session: Session, order_id: int, token: str) -> bool:
        now = utcnow()
        claimed = session.execute(
            update(Order)
            .where(Order.id == order_id, Order.saga_active.is_(True))
            .where(or_(Order.lease_until.is_(None), Order.lease_until < now, Order.lease_token == token))
            .values(lease_until=now + LEASE, lease_token=token)
        )
        return claimed.rowcount == 1

    def _retry_later(self, order_id: int, step: Step, exc: Exception) -> None:
        with self.store.transaction() as tx:
            order = load_for_update(tx.session, order_id)
            order.attempts += 1
            attempts = order.attempts
            delay = retry_delay(attempts)
            order.next_attempt_at = utcnow() + delay
            order.lease_until = order.lease_token = None
        log.warning("order %s: %s failed (%s); attempt %d, retrying in %ss",
                    order_id, step, exc, attempts, delay.total_seconds())


def due_orders(session: Session, now: datetime, limit: int = 100) -> list[Order]:
    """Orders whose saga has a step due and nobody running it."""
    return list(session.scalars(
        select(Order)
        .where(Order.saga_active.is_(True))
        .where(or_(Order.next_attempt_at.is_(None), Order.next_attempt_at <= now))
        .where(or_(Order.lease_until.is_(None), Order.lease_until < now))
        .order_by(Order.id)
        .limit(limit)
    ))
