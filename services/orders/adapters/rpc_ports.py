"""The other services as the orders use cases see them, over nameko RPC.

The forward steps of many orders travel in one call each (``inventory.reserve_many``,
``payments.charge_many``), which answer per order; the compensations, rare, are one call per order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.common.errors import InternalError, ServiceError, error_from_entry
from services.common.limits import MAX_BATCH_ITEMS
from services.orders.domain.saga import REFUSABLE, Step
from services.orders.ports import SagaRecord, StepOutcome


def _outcome_of_error(step: Step, exc: ServiceError) -> StepOutcome:
    """A typed business refusal of a refusable step ends the forward path; anything else (a
    timeout, a participant's internal error) is technical: the step is retried."""
    if step in REFUSABLE and not exc.transient and not isinstance(exc, InternalError):
        return str(exc)
    return exc


def _error_outcome(step: Step, answer: dict[str, Any]) -> StepOutcome:
    """The outcome of one order's answer in a batch call: None unless it carries an error."""
    return _outcome_of_error(step, error_from_entry(answer["error"])) if "error" in answer else None


class RpcParticipants:
    """The services the saga commands, each idempotent per order."""

    def __init__(self, inventory: Any, payments: Any, shipping: Any):
        self.inventory = inventory
        self.payments = payments
        self.shipping = shipping

    def run(self, step: Step, orders: Sequence[SagaRecord]) -> list[StepOutcome]:
        if step is Step.RESERVE_STOCK:
            answers = _in_batches(self.inventory, "reserve_many", [
                {"order_id": order.id, "correlation_id": order.correlation_id,
                 "items": [{"product_id": product_id, "quantity": quantity}
                           for product_id, quantity in order.items]}
                for order in orders
            ])
            return [_error_outcome(step, answer) for answer in answers]
        if step is Step.CHARGE_PAYMENT:
            answers = _in_batches(self.payments, "charge_many", [
                {"order_id": order.id, "customer_id": order.customer_id, "amount_cents": order.total_cents,
                 "currency": order.currency, "correlation_id": order.correlation_id}
                for order in orders
            ])
            return [_error_outcome(step, answer) if "error" in answer else _declined(answer["payment"])
                    for answer in answers]
        return [self._one(step, order) for order in orders]

    def _one(self, step: Step, order: SagaRecord) -> StepOutcome:
        try:
            self._perform(step, order)
        except ServiceError as exc:
            return _outcome_of_error(step, exc)
        except Exception as exc:  # a timeout or a broken connection: this order's step is retried
            return exc
        return None

    def _perform(self, step: Step, order: SagaRecord) -> None:
        if step is Step.COMMIT_STOCK:
            self.inventory.call("commit", order.id)
        elif step is Step.REQUEST_SHIPMENT:
            self.shipping.call("schedule_shipment", order.id, order.customer_id)
        elif step is Step.CANCEL_SHIPMENT:
            # with the customer: a cancellation that overtakes order_confirmed leaves a cancelled shipment
            self.shipping.call("cancel_shipment", order.id, order.customer_id)
        elif step is Step.REFUND_PAYMENT:
            self.payments.call("refund", order.id)
        elif step is Step.RELEASE_STOCK:
            self.inventory.call("release", order.id)


def _in_batches(service: Any, method: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Call a batch RPC with at most MAX_BATCH_ITEMS entries per call; the answers in order."""
    answers: list[dict[str, Any]] = []
    for start in range(0, len(entries), MAX_BATCH_ITEMS):
        answers.extend(service.call(method, entries[start:start + MAX_BATCH_ITEMS]))
    return answers


def _declined(payment: dict[str, Any]) -> str | None:
    if payment["status"] == "DECLINED":
        return f"payment declined: {payment['decline_reason']}"
    return None
