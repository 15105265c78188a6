"""Shipping: one shipment per confirmed order, moved along by a timer or an admin.

A shipment is scheduled when the order's ``order_confirmed`` event arrives (consumed in batches:
one worker and one transaction for what arrived within 50 ms), or by the ``schedule_shipment`` RPC.
A cancellation that overtakes the confirmation leaves a cancelled shipment behind, so the
confirmation that arrives after it schedules nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from nameko.timer import timer
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError

from services.common.batch_events import batch_event_handler
from services.common.config import setting
from services.common.errors import NotFound
from services.common.rpc import rpc
from services.common.schemas import load, require_id
from services.common.store import Store, UnitOfWork, utcnow
from services.common.telemetry import Telemetry, event_log_context
from services.shipping import domain
from services.shipping.metrics import collect as collect_metrics
from services.shipping.models import Base, Shipment
from services.shipping.schemas import EVENT_SCHEMAS, AdvanceSchema, ShipmentSchema

log = logging.getLogger(__name__)

#: read once: nameko fixes a timer's interval when the class is defined
TICK_SECONDS = float(setting("SHIPPING_TICK_SECONDS", "0.5"))
#: shipments the timer moves per tick, so one tick never runs for long
BATCH_SIZE = 100

shipment_schema = ShipmentSchema()


def _delays() -> domain.Delays:
    """Read at every tick so the simulated carrier can be sped up without a restart."""
    return domain.Delays.from_seconds(
        float(setting("SHIPPING_SHIP_AFTER_SECONDS", "5")),
        float(setting("SHIPPING_DELIVER_AFTER_SECONDS", "10")),
    )


# Built once, values bound at execution: a statement built per call (the timer's, ten times a second
# on the bench) had its cache key worked out anew each time, a sixth of the service's profile.
FIND = select(Shipment).where(Shipment.order_id == bindparam("order_id"))
LOCKED_FIND = FIND.with_for_update()
DUE = (
    select(Shipment)
    .where(
        or_(
            and_(Shipment.status == domain.SCHEDULED, Shipment.scheduled_at <= bindparam("ship_before")),
            and_(Shipment.status == domain.SHIPPED, Shipment.shipped_at <= bindparam("deliver_before")),
        )
    )
    .order_by(Shipment.id)
    .limit(BATCH_SIZE)
    .with_for_update(skip_locked=True)
)


def _find(session: Any, order_id: int, lock: bool = False) -> Shipment | None:
    return session.scalar(LOCKED_FIND if lock else FIND, {"order_id": order_id})


def _event_payload(shipment: Shipment) -> dict[str, Any]:
    return {
        "order_id": shipment.order_id,
        "customer_id": shipment.customer_id,
        "shipment_id": shipment.id,
        "tracking_number": shipment.tracking_number,
    }


def _move(tx: UnitOfWork, shipment: Shipment, status: str, now: datetime) -> None:
    """Change status, stamp the moment, and announce it in the same transaction."""
    shipment.status = status
    setattr(shipment, domain.TIMESTAMPS[status], now)
    tx.emit(domain.EVENTS[status], _event_payload(shipment), aggregate_id=shipment.order_id,
            correlation_id=shipment.correlation_id)


def _schedule(tx: UnitOfWork, order_id: int, customer_id: int, correlation_id: str | None) -> Shipment:
    shipment = Shipment(
        order_id=order_id,
        customer_id=customer_id,
        status=domain.SCHEDULED,
        tracking_number=domain.new_tracking_number(),
        scheduled_at=utcnow(),
        correlation_id=correlation_id,
    )
    tx.session.add(shipment)
    tx.session.flush()
    tx.emit(domain.EVENTS[domain.SCHEDULED], _event_payload(shipment), aggregate_id=order_id,
            correlation_id=correlation_id)
    return shipment


class ShippingService:
    name = "shipping"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry(collect=collect_metrics)

    @rpc
    def schedule_shipment(self, order_id: int, customer_id: int) -> dict:
        """Idempotent per order: a redelivered saga step gets the same shipment back."""
        require_id(order_id, "order_id")
        require_id(customer_id, "customer_id")
        with self.store.get_session(close_on_exit=True) as session:
            existing = _find(session, order_id)
            if existing is not None:
                return shipment_schema.dump(existing)
        try:
            with self.store.transaction() as tx:
                return shipment_schema.dump(_schedule(tx, order_id, customer_id, tx.correlation_id))
        except IntegrityError:
            # a concurrent call for the same order won the insert
            with self.store.get_session(close_on_exit=True) as session:
                existing = _find(session, order_id)
                if existing is None:
                    raise
                return shipment_schema.dump(existing)

    @batch_event_handler([("orders", "order_confirmed")])
    def on_orders_confirmed(self, events: list[dict[str, Any]]) -> list[int]:
        """Schedule a shipment for every confirmed order that has none (nor a cancelled one)."""
        scheduled = []
        with self.store.transaction() as tx:
            for event in events:
                payload = event["payload"]
                if tx.first_delivery(event) and _find(tx.session, payload["order_id"]) is None:
                    scheduled.append((event, _schedule(tx, payload["order_id"], payload["customer_id"],
                                                       event.get("correlation_id")).tracking_number))
        for event, tracking_number in scheduled:
            with event_log_context(event, "on_orders_confirmed"):
                log.info("shipment scheduled, tracking number %s", tracking_number)
        return []

    @rpc
    def cancel_shipment(self, order_id: int, customer_id: int | None = None) -> dict:
        """Stop a shipment that has not left; Conflict once it has.

        With ``customer_id`` (the saga's compensation passes it), a cancellation that arrives
        before the order's confirmation did leaves a cancelled shipment, so the confirmation
        schedules none when it comes.
        """
        require_id(order_id, "order_id")
        if customer_id is not None:
            require_id(customer_id, "customer_id")
        with self.store.transaction() as tx:
            shipment = _find(tx.session, order_id, lock=True)
            if shipment is None:
                if customer_id is not None:
                    tx.session.add(Shipment(
                        order_id=order_id, customer_id=customer_id, status=domain.CANCELLED,
                        tracking_number=domain.new_tracking_number(), cancelled_at=utcnow(),
                        correlation_id=tx.correlation_id))
                return {"order_id": order_id, "cancelled": False}
            cancelled = domain.should_cancel(shipment.status)
            if cancelled:
                _move(tx, shipment, domain.CANCELLED, utcnow())
        return {"order_id": order_id, "cancelled": cancelled}

    @rpc
    def get_shipment(self, order_id: int, customer_id: int | None = None) -> dict:
        """With ``customer_id``, someone else's shipment looks exactly like a missing one."""
        require_id(order_id, "order_id")
        if customer_id is not None:
            require_id(customer_id, "customer_id")
        with self.store.get_session(close_on_exit=True) as session:
            shipment = _find(session, order_id)
            if shipment is None or customer_id not in (None, shipment.customer_id):
                raise NotFound(f"shipment for order {order_id} not found")
            return shipment_schema.dump(shipment)

    @rpc
    def advance_shipment(self, order_id: int, status: str) -> dict:
        """Admin command: push a shipment forward, announcing every step it passes."""
        require_id(order_id, "order_id")
        target = load(AdvanceSchema(), {"status": status})["status"]
        with self.store.transaction() as tx:
            shipment = _find(tx.session, order_id, lock=True)
            if shipment is None:
                raise NotFound(f"shipment for order {order_id} not found")
            now = utcnow()
            for step in domain.advance_path(shipment.status, target):
                _move(tx, shipment, step, now)
            return shipment_schema.dump(shipment)

    @timer(interval=TICK_SECONDS)
    def progress_shipments(self) -> None:
        """The simulated carrier: ships and delivers shipments whose time has come, all of one tick
        in one transaction (each in a savepoint of its own, so one bad shipment holds up no other).

        The shipments are locked, and those another worker holds (an admin's advance) skipped, so
        domain.due_status decides on what is current; the query only narrows the candidates.
        """
        delays = _delays()
        now = utcnow()
        with self.store.transaction() as tx:
            due = tx.session.scalars(DUE, {"ship_before": now - delays.ship_after,
                                           "deliver_before": now - delays.deliver_after}).all()
            for shipment in due:
                step = domain.due_status(shipment.status, shipment.scheduled_at, shipment.shipped_at, now,
                                         delays)
                if step is None:
                    continue
                try:
                    with tx.session.begin_nested():
                        _move(tx, shipment, step, now)
                except Exception:
                    log.exception("could not progress the shipment of order %s", shipment.order_id)
