"""Payments: a simulated card processor that charges each order at most once.

The outcome of a charge, capture or decline, is stored under the order's
unique key, so a retried or concurrent charge returns the first answer
instead of asking the processor again.

``charge_many`` charges a batch of orders: the stored payments in one query, the new charges sent to
the processor together, and their outcomes stored in one transaction, each in a savepoint of its own.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import eventlet
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.config import setting
from services.common.errors import (
    InternalError,
    NotFound,
    ValidationFailed,
    error_entry,
    error_from_entry,
)
from services.common.logs import bound
from services.common.rpc import rpc
from services.common.schemas import load, require_id
from services.common.store import Store, UnitOfWork
from services.common.telemetry import Telemetry
from services.payments.domain import (
    EVENT_TYPES,
    REFUNDED,
    Decision,
    decide,
    failure_rate,
    latency_seconds,
    refundable,
)
from services.payments.metrics import collect as collect_metrics
from services.payments.models import Base, Payment
from services.payments.schemas import EVENT_SCHEMAS, ChargeManySchema, ChargeSchema, PaymentSchema

log = logging.getLogger(__name__)

payment_schema = PaymentSchema()
charge_schema = ChargeSchema()
charge_many_schema = ChargeManySchema()


#: built once, the order id bound at execution (a statement built per call has its cache key worked
#: out anew each time)
FIND = select(Payment).where(Payment.order_id == bindparam("order_id"))
LOCKED_FIND = FIND.with_for_update()
FIND_MANY = select(Payment).where(Payment.order_id.in_(bindparam("order_ids", expanding=True)))


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


def _store_charge(
    tx: UnitOfWork, data: dict[str, Any], decision: Decision, correlation_id: str | None
) -> dict[str, Any]:
    """Store the processor's answer for one order inside ``tx``, with its event; returns the payment.

    In a savepoint of its own, so that a charge that cannot be stored rolls back alone; if a
    concurrent charge for the same order stored its outcome first, that is the payment.
    """
    try:
        with tx.session.begin_nested():
            payment = Payment(**data, status=decision.status, decline_reason=decision.decline_reason,
                              processor_reference=f"sim_{uuid.uuid4().hex}")
            tx.session.add(payment)
            tx.session.flush()
            result = payment_schema.dump(payment)
            tx.emit(EVENT_TYPES[decision.status], _event_payload(result), aggregate_id=payment.order_id,
                    correlation_id=correlation_id)
    except IntegrityError:
        # the insert waited for the other charge to commit, so its payment is readable here
        existing = _find(tx.session, data["order_id"])
        if existing is None:
            raise
        return payment_schema.dump(existing)
    return result


class PaymentsService:
    name = "payments"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry(collect=collect_metrics)

    @rpc
    def charge(self, order_id: int, customer_id: int, amount_cents: int, currency: str) -> dict:
        """Charge once per order; a decline is an answer (returned and kept), not an error."""
        (outcome,) = self.charge_many([{"order_id": order_id, "customer_id": customer_id,
                                        "amount_cents": amount_cents, "currency": currency}])
        if "error" in outcome:
            raise error_from_entry(outcome["error"])
        return outcome["payment"]

    @rpc
    def charge_many(self, charges: list) -> list[dict]:
        """``charge`` for a batch of orders; the answer has one entry per charge, in order:
        ``{"order_id", "payment"}`` (a decline included), or ``{"order_id", "error"}`` for a
        malformed charge or one that failed.

        An order charged before gets its stored payment and is not sent to the processor again, nor
        is an order that comes twice in the batch: the first of its entries is the one charged.
        """
        entries = load(charge_many_schema, {"charges": charges})["charges"]
        outcomes: list[dict[str, Any]] = [{"order_id": entry.get("order_id")} for entry in entries]
        requests: dict[int, dict[str, Any]] = {}
        correlation_ids: dict[int, str | None] = {}  # by order id
        for index, entry in enumerate(entries):
            try:
                data = load(charge_schema, entry)
            except ValidationFailed as exc:
                outcomes[index]["error"] = error_entry(exc)
                continue
            correlation_ids.setdefault(data["order_id"], data.pop("correlation_id"))
            requests[index] = data
        if not requests:
            return outcomes
        order_ids = {data["order_id"] for data in requests.values()}
        # order id -> {"payment": ...} or {"error": ...}: one answer per order, however many entries
        answers: dict[int, dict[str, Any]] = {
            order_id: {"payment": payment} for order_id, payment in self._existing_many(order_ids).items()
        }
        new: dict[int, dict[str, Any]] = {}
        for data in requests.values():
            if data["order_id"] not in answers:
                new.setdefault(data["order_id"], data)
        if new:
            answers.update(self._charge_new(new, correlation_ids))
        for index, data in requests.items():
            outcomes[index].update(answers[data["order_id"]])
        # one line per order, under its own correlation id (the call's is one order's only)
        for order_id, answer in answers.items():
            with bound(order_id=order_id, correlation_id=correlation_ids[order_id]):
                if "payment" in answer:
                    log.info("order %s: payment %s", order_id, answer["payment"]["status"])
                else:
                    log.info("order %s: not charged: %s", order_id, answer["error"]["message"])
        return outcomes

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

    def _charge_new(
        self, charges: dict[int, dict[str, Any]], correlation_ids: dict[int, str | None]
    ) -> dict[int, dict[str, Any]]:
        """Send ``charges`` (by order id) to the processor and store its answers; each order's
        ``{"payment": ...}``, or ``{"error": ...}`` if its answer could not be stored."""
        # the processor calls, concurrent: one latency for the batch, and outside any transaction,
        # as every remote call
        eventlet.sleep(latency_seconds(setting("PAYMENT_LATENCY_MS", "0")))
        rate = failure_rate(setting("PAYMENT_FAILURE_RATE", "0"))
        decisions = {order_id: decide(data["amount_cents"], rate) for order_id, data in charges.items()}
        answers: dict[int, dict[str, Any]] = {}
        with self.store.transaction() as tx:
            # in order id order: two batches inserting the same orders in opposite orders would each
            # wait for the other's uncommitted key (a deadlock on PostgreSQL)
            for order_id in sorted(charges):
                try:
                    answers[order_id] = {"payment": _store_charge(
                        tx, charges[order_id], decisions[order_id], correlation_ids[order_id])}
                except Exception:
                    # a fault, not an answer: its savepoint rolled back, the others still commit,
                    # and the caller retries this order
                    log.exception("could not store the charge of order %s", order_id)
                    answers[order_id] = {"error": error_entry(InternalError("internal error"))}
        return answers

    def _existing_many(self, order_ids: set[int]) -> dict[int, dict]:
        """The stored payments of ``order_ids``, by order id, in one query."""
        with self.store.get_session(close_on_exit=True) as session:
            payments = session.scalars(FIND_MANY, {"order_ids": sorted(order_ids)})
            return {payment.order_id: payment_schema.dump(payment) for payment in payments}

    def _existing(self, order_id: int) -> dict | None:
        with self.store.get_session(close_on_exit=True) as session:
            payment = _find(session, order_id)
            return None if payment is None else payment_schema.dump(payment)
