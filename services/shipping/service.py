"""Shipping: one shipment per confirmed order, moved along by a timer or an admin.

A shipment is scheduled when the order's ``order_confirmed`` event arrives (consumed in batches:
one worker and one transaction for what arrived within 50 ms), or by the ``schedule_shipment`` RPC.
A cancellation that overtakes the confirmation leaves a cancelled shipment behind, so the
confirmation that arrives after it schedules nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nameko.timer import timer
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.common.batch_events import batch_event_handler
from services.common.config import setting
from services.common.errors import NotFound
from services.common.rpc import rpc
from services.common.schemas import load, require_id
from services.common.store import InvalidEventPayload, Store, UnitOfWork, utcnow
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


shipments = Shipment.__table__

# Built once, values bound at execution: a statement built per call (the timer's, ten times a second
# on the bench) had its cache key worked out anew each time, a sixth of the service's profile.
FIND = select(Shipment).where(Shipment.order_id == bindparam("order_id"))
LOCKED_FIND = FIND.with_for_update()
# The hot paths (the timer, the confirmations) over Core, not the ORM: its flushes, loads and
# attribute bookkeeping were most of the service's profile. Bind names differ from the column names
# the SET clauses use.
DUE = (
    select(shipments.c.id, shipments.c.order_id, shipments.c.customer_id, shipments.c.status,
           shipments.c.tracking_number, shipments.c.correlation_id, shipments.c.scheduled_at,
           shipments.c.shipped_at)
    .where(
        or_(
            and_(shipments.c.status == domain.SCHEDULED,
                 shipments.c.scheduled_at <= bindparam("ship_before")),
            and_(shipments.c.status == domain.SHIPPED,
                 shipments.c.shipped_at <= bindparam("deliver_before")),
        )
    )
    .order_by(shipments.c.id)
    .limit(BATCH_SIZE)
    .with_for_update(skip_locked=True)
)
#: one statement for a tick's every move, shipped or delivered: a row binds the moment for the
#: column its new status stamps and None for the other, which COALESCE leaves as it is
MOVE = (
    update(shipments)
    .where(shipments.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"),
            shipped_at=func.coalesce(bindparam("b_shipped_at", type_=shipments.c.shipped_at.type),
                                     shipments.c.shipped_at),
            delivered_at=func.coalesce(bindparam("b_delivered_at", type_=shipments.c.delivered_at.type),
                                       shipments.c.delivered_at),
            updated_at=bindparam("b_now"))
)
WITH_SHIPMENT = (select(shipments.c.order_id)
                 .where(shipments.c.order_id.in_(bindparam("order_ids", expanding=True))))
INSERT_SHIPMENTS = insert(shipments).returning(shipments.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True, slots=True)
class NewShipment:
    """A shipment as scheduled, for ShipmentSchema and the events: the values it was inserted with,
    so no ORM object is built (nor read back) for it."""

    id: int
    order_id: int
    customer_id: int
    tracking_number: str
    scheduled_at: datetime
    correlation_id: str | None
    status: str = domain.SCHEDULED
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


def _find(session: Any, order_id: int, lock: bool = False) -> Shipment | None:
    return session.scalar(LOCKED_FIND if lock else FIND, {"order_id": order_id})


def _with_shipment(session: Any, order_ids: list[int]) -> set[int]:
    """The orders among ``order_ids`` that have a shipment, a cancelled one too."""
    return set(session.scalars(WITH_SHIPMENT, {"order_ids": order_ids})) if order_ids else set()


def _event_payload(shipment: Any) -> dict[str, Any]:
    return {
        "order_id": shipment.order_id,
        "customer_id": shipment.customer_id,
        "shipment_id": shipment.id,
        "tracking_number": shipment.tracking_number,
    }


def _announce(tx: UnitOfWork, shipment: Any, status: str) -> None:
    """Announce that ``shipment`` (a Shipment, a DUE row or a NewShipment) reached ``status``, under
    the correlation id of the call that scheduled it (a timer's worker has none of its own)."""
    tx.emit(domain.EVENTS[status], _event_payload(shipment), aggregate_id=shipment.order_id,
            correlation_id=shipment.correlation_id)


def _move(tx: UnitOfWork, shipment: Shipment, status: str, now: datetime) -> None:
    """Change status, stamp the moment, and announce it in the same transaction."""
    shipment.status = status
    setattr(shipment, domain.TIMESTAMPS[status], now)
    _announce(tx, shipment, status)


def _schedule(tx: UnitOfWork, orders: Iterable[tuple[int, int, str | None]]) -> list[NewShipment]:
    """Schedule a shipment for each ``(order_id, customer_id, correlation_id)``, in one INSERT, and
    announce each; the caller has made sure none of the orders has one."""
    now = utcnow()
    rows = [{"order_id": order_id, "customer_id": customer_id, "status": domain.SCHEDULED,
             "tracking_number": domain.new_tracking_number(), "scheduled_at": now, "updated_at": now,
             "correlation_id": correlation_id}
            for order_id, customer_id, correlation_id in orders]
    if not rows:
        return []
    scheduled = []
    for row, shipment_id in zip(rows, tx.session.scalars(INSERT_SHIPMENTS, rows).all(), strict=True):
        shipment = NewShipment(shipment_id, row["order_id"], row["customer_id"], row["tracking_number"], now,
                               row["correlation_id"])
        _announce(tx, shipment, domain.SCHEDULED)
        scheduled.append(shipment)
    return scheduled


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
                [shipment] = _schedule(tx, [(order_id, customer_id, tx.correlation_id)])
                return shipment_schema.dump(shipment)
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
        with self.store.transaction() as tx:
            claimed = [event for event in events if tx.first_delivery(event)]
            taken = _with_shipment(tx.session, [event["payload"]["order_id"] for event in claimed])
            confirmations = []
            for event in claimed:
                order_id = event["payload"]["order_id"]
                # an order confirmed twice in one batch (two event ids) gets the first one's shipment
                if order_id not in taken:
                    taken.add(order_id)
                    confirmations.append(event)
            scheduled = _schedule(tx, [(event["payload"]["order_id"], event["payload"]["customer_id"],
                                        event.get("correlation_id")) for event in confirmations])
        for event, shipment in zip(confirmations, scheduled, strict=True):
            with event_log_context(event, "on_orders_confirmed"):
                log.info("shipment scheduled, tracking number %s", shipment.tracking_number)
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
        in one transaction and one UPDATE.

        The shipments are locked, and those another worker holds (an admin's advance) skipped, so
        domain.due_status decides on what is current; the query only narrows the candidates.
        """
        delays = _delays()
        now = utcnow()
        with self.store.transaction() as tx:
            due = tx.session.execute(DUE, {"ship_before": now - delays.ship_after,
                                           "deliver_before": now - delays.deliver_after}).all()
            moves = []
            for shipment in due:
                step = domain.due_status(shipment.status, shipment.scheduled_at, shipment.shipped_at, now,
                                         delays)
                if step is None:
                    continue
                try:
                    _announce(tx, shipment, step)
                except InvalidEventPayload:
                    # refused before anything was written: this shipment stays, the others move on
                    log.exception("could not progress the shipment of order %s", shipment.order_id)
                    continue
                moves.append({"b_id": shipment.id, "b_status": step, "b_now": now,
                              "b_shipped_at": now if step == domain.SHIPPED else None,
                              "b_delivered_at": now if step == domain.DELIVERED else None})
            if moves:
                tx.session.execute(MOVE, moves)
