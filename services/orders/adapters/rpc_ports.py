"""The other services as the orders use cases see them, over nameko RPC."""

from __future__ import annotations

from typing import Any

from services.common.errors import InternalError, ServiceError
from services.orders.domain.saga import REFUSABLE, Step
from services.orders.ports import SagaRecord


class RpcParticipants:
    """The services the saga commands, each idempotent per order."""

    def __init__(self, inventory: Any, payments: Any, shipping: Any):
        self.inventory = inventory
        self.payments = payments
        self.shipping = shipping

    def run(self, step: Step, order: SagaRecord) -> str | None:
        try:
            return self._perform(step, order)
        except ServiceError as exc:
            # a typed business refusal of a refusable step ends the forward path; anything else
            # (a timeout, a participant's internal error) is technical: the step is retried
            if step in REFUSABLE and not exc.transient and not isinstance(exc, InternalError):
                return str(exc)
            raise

    def _perform(self, step: Step, order: SagaRecord) -> str | None:
        if step is Step.RESERVE_STOCK:
            items = [{"product_id": product_id, "quantity": quantity} for product_id, quantity in order.items]
            self.inventory.call("reserve", order.id, items)
        elif step is Step.CHARGE_PAYMENT:
            payment = self.payments.call(
                "charge", order.id, order.customer_id, order.total_cents, order.currency
            )
            if payment["status"] == "DECLINED":
                return f"payment declined: {payment['decline_reason']}"
        elif step is Step.COMMIT_STOCK:
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
        return None
