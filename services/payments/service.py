"""Payments: a simulated card processor that charges each order at most once.

The outcome of a charge, capture or decline, is stored under the order's
unique key, so a retried or concurrent charge returns the first answer
instead of asking the processor again.
"""

from __future__ import annotations

import uuid
from typing import Any

import eventlet
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.config import setting
from services.common.errors import NotFound
from services.common.rpc import rpc
from services.common.schemas import load, require_id
from services.common.store import Store
from services.common.telemetry import Telemetry
from services.payments.domain import (
    EVENT_TYPES,
    REFUNDED,
    decide,
    failure_rate,
    latency_seconds,
    refundable,
)
from services.payments.metrics import collect as collect_metrics
from services.payments.models import Base, Payment
from services.payments.schemas import EVENT_SCHEMAS, ChargeSchema, PaymentSchema

payment_schema = PaymentSchema()


#: built once, the order id bound at execution (a statement built per call has its cache key worked
#: out anew each time)
FIND = select(Payment).where(Payment.order_id == bindparam("order_id"))
LOCKED_FIND = FIND.with_for_update()


def _find(session: Session, order_id: int, *, lock: bool = False) -> Payment | None:
    return session.scalars(LOCKED_FIND if lock else FIND, {"order_id": order_id}).first()


def _event_payload(payment: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": payment["order_id"],
        "customer_id": payment["customer_id"],
        "payment_id": payment["payment_id"],
        "amount_cents": payment["amount_cents"],
        "currency": payment["currency"],
        "reason": payment["decline_reason"],
    }


class PaymentsService:
    name = "payments"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry(collect=collect_metrics)

    @rpc
    def charge(self, order_id: int, customer_id: int, amount_cents: int, currency: str) -> dict:
        """Charge once per order; a decline is an answer (returned and kept), not an error."""
        data = load(ChargeSchema(), {"order_id": order_id, "customer_id": customer_id,
                                     "amount_cents": amount_cents, "currency": currency})
        existing = self._existing(data["order_id"])
        if existing is not None:
            return existing
        # the processor call: outside any transaction, as every remote call
        eventlet.sleep(latency_seconds(setting("PAYMENT_LATENCY_MS", "0")))
        decision = decide(data["amount_cents"], failure_rate(setting("PAYMENT_FAILURE_RATE", "0")))
        try:
            with self.store.transaction() as tx:
                payment = Payment(**data, status=decision.status, decline_reason=decision.decline_reason,
                                  processor_reference=f"sim_{uuid.uuid4().hex}")
                tx.session.add(payment)
                tx.session.flush()
                result = payment_schema.dump(payment)
                tx.emit(EVENT_TYPES[decision.status], _event_payload(result), aggregate_id=payment.order_id)
        except IntegrityError:
            # a concurrent charge for the same order stored its outcome first
            existing = self._existing(data["order_id"])
            if existing is None:
                raise
            return existing
        return result

    @rpc
    def refund(self, order_id: int) -> dict:
        """Give a captured charge back; the saga's compensation, safe to repeat."""
        order_id = require_id(order_id, "order_id")
        with self.store.transaction() as tx:
            payment = _find(tx.session, order_id, lock=True)
            if payment is None:
                return {"order_id": order_id, "refunded": False, "status": None}
            if not refundable(payment.status):
                return {"order_id": order_id, "refunded": False, "status": payment.status}
            payment.status = REFUNDED
            tx.session.flush()
            tx.emit("payment_refunded", _event_payload(payment_schema.dump(payment)), aggregate_id=order_id)
        return {"order_id": order_id, "refunded": True, "status": REFUNDED}

    @rpc
    def get_payment(self, order_id: int, customer_id: int | None = None) -> dict:
        """The order's payment; another customer's looks exactly like a missing one."""
        order_id = require_id(order_id, "order_id")
        if customer_id is not None:
            customer_id = require_id(customer_id, "customer_id")
        payment = self._existing(order_id)
        if payment is None or (customer_id is not None and payment["customer_id"] != customer_id):
            raise NotFound(f"payment for order {order_id} not found")
        return payment

    def _existing(self, order_id: int) -> dict | None:
        with self.store.get_session(close_on_exit=True) as session:
            payment = _find(session, order_id)
            return None if payment is None else payment_schema.dump(payment)
