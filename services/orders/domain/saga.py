"""The order saga as a pure state machine: no broker, no database.

Forward steps run in order: reserve stock, then charge payment; the order is then **CONFIRMED**,
and its ``order_confirmed`` event (published through the outbox, so never lost) is what turns the
hold into a sale at inventory and what asks shipping for the shipment: the saga marks both done
when it confirms and spends no call of its own on them. (``COMMIT_STOCK`` and
``REQUEST_SHIPMENT`` remain steps for an order a previous version left between them.) When a step
is refused (out of stock, payment declined) or the customer cancels, the saga compensates every
completed step in reverse and ends REJECTED or CANCELLED. The runner persists this state after
every step, so a crash anywhere resumes from the last completed step; participants are idempotent
per order, so re-running the step that was in flight never repeats its effect (no double charge).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from services.orders.domain.errors import CannotCancel


class Status(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


FINAL = frozenset({Status.DELIVERED, Status.REJECTED, Status.CANCELLED})

#: the event each status announces
STATUS_EVENTS = {
    Status.PENDING: "order_created",
    Status.CONFIRMED: "order_confirmed",
    Status.SHIPPED: "order_shipped",
    Status.DELIVERED: "order_delivered",
    Status.REJECTED: "order_rejected",
    Status.CANCELLED: "order_cancelled",
}


class Step(StrEnum):
    RESERVE_STOCK = "RESERVE_STOCK"
    CHARGE_PAYMENT = "CHARGE_PAYMENT"
    COMMIT_STOCK = "COMMIT_STOCK"
    REQUEST_SHIPMENT = "REQUEST_SHIPMENT"
    CANCEL_SHIPMENT = "CANCEL_SHIPMENT"
    REFUND_PAYMENT = "REFUND_PAYMENT"
    RELEASE_STOCK = "RELEASE_STOCK"


#: steps a participant may refuse for a business reason; any other failure is retried
REFUSABLE = frozenset({Step.RESERVE_STOCK, Step.CHARGE_PAYMENT, Step.CANCEL_SHIPMENT})


@dataclass
class SagaState:
    status: Status = Status.PENDING
    stock_reserved: bool = False
    payment_charged: bool = False
    stock_committed: bool = False
    shipment_requested: bool = False
    #: set while undoing completed steps
    compensating: bool = False
    #: where compensation ends: REJECTED or CANCELLED
    compensation_target: Status | None = None
    reason: str | None = None


def next_step(state: SagaState) -> Step | None:
    """The step to run now, or None when the saga waits (shipping) or is over."""
    if state.status in FINAL:
        return None
    if state.compensating:
        if state.shipment_requested:
            return Step.CANCEL_SHIPMENT
        if state.payment_charged:
            return Step.REFUND_PAYMENT
        if state.stock_reserved:
            return Step.RELEASE_STOCK
        return None
    if state.status is not Status.PENDING and state.status is not Status.CONFIRMED:
        return None
    if not state.stock_reserved:
        return Step.RESERVE_STOCK
    if not state.payment_charged:
        return Step.CHARGE_PAYMENT
    if not state.stock_committed:
        return Step.COMMIT_STOCK
    if not state.shipment_requested:
        return Step.REQUEST_SHIPMENT
    return None


def settle(state: SagaState) -> Status | None:
    """End compensation once nothing is left to undo; returns the final status if it ended.

    complete() and refuse() settle after each step; a cancellation that arrives before any step
    succeeded has nothing to undo, and is settled by the runner when it finds no step to run.
    """
    if state.compensating and next_step(state) is None and state.compensation_target:
        state.status = state.compensation_target
        state.compensating = False
        return state.status
    return None


def complete(state: SagaState, step: Step) -> Status | None:
    """Record that ``step`` succeeded; returns the new status if it changed."""
    if step is Step.RESERVE_STOCK:
        state.stock_reserved = True
    elif step is Step.CHARGE_PAYMENT:
        state.payment_charged = True
        if not state.compensating:
            # order_confirmed commits the stock and requests the shipment (see the module's doc)
            state.stock_committed = state.shipment_requested = True
            state.status = Status.CONFIRMED
            return state.status
    elif step is Step.COMMIT_STOCK:
        state.stock_committed = True
        if not state.compensating:
            state.status = Status.CONFIRMED
            return state.status
    elif step is Step.REQUEST_SHIPMENT:
        state.shipment_requested = True
    elif step is Step.CANCEL_SHIPMENT:
        state.shipment_requested = False
    elif step is Step.REFUND_PAYMENT:
        state.payment_charged = False
    elif step is Step.RELEASE_STOCK:
        state.stock_reserved = False
        state.stock_committed = False
    return settle(state)


def refuse(state: SagaState, step: Step, reason: str) -> Status | None:
    """Record a business refusal of ``step``; returns the new status if it changed."""
    if step not in REFUSABLE:
        raise ValueError(f"{step} cannot be refused; retry it")
    if step is Step.CANCEL_SHIPMENT:
        # the parcel left before the cancellation reached shipping: the order stands
        state.compensating = False
        state.compensation_target = None
        state.reason = None
        return None
    state.compensating = True
    state.compensation_target = Status.REJECTED if step is Step.RESERVE_STOCK else Status.CANCELLED
    state.reason = reason
    return settle(state)


def request_cancel(state: SagaState, reason: str) -> bool:
    """Start compensation on a customer's request; False if already under way."""
    if state.status is Status.CANCELLED or (state.compensating and state.compensation_target):
        return False
    if state.status is not Status.PENDING and state.status is not Status.CONFIRMED:
        raise CannotCancel(f"an order that is {state.status.lower()} cannot be cancelled")
    state.compensating = True
    state.compensation_target = Status.CANCELLED
    state.reason = reason
    return True


def shipped(state: SagaState) -> Status | None:
    """Shipping reports the parcel left; this overrides a pending cancellation."""
    if state.status is Status.CONFIRMED:
        state.status = Status.SHIPPED
        state.compensating = False
        state.compensation_target = None
        state.reason = None
        return state.status
    return None


def delivered(state: SagaState) -> Status | None:
    """Delivered may overtake shipped: the events travel on different queues."""
    if state.status is Status.CONFIRMED:
        shipped(state)
    if state.status is Status.SHIPPED:
        state.status = Status.DELIVERED
        return state.status
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How the saga treats a step that failed for a technical reason (participant down, timeout).

    It is retried with exponential backoff; after ``max_attempts`` failures in a row the saga is
    parked as stalled, with the reason, until an operator resumes it.
    """

    max_attempts: int = 10
    max_backoff_seconds: float = 30

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(2 ** max(attempts - 1, 0), self.max_backoff_seconds))

    def stalls(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
