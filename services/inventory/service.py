"""Inventory: stock levels and the per-order holds that keep them from being oversold.

Every change of a counter is one conditional ``UPDATE`` evaluated by the
database, so concurrent workers queue on the row lock instead of racing on a
value they read earlier; the CHECK constraints back this up.

``reserve_many`` holds stock for a batch of orders in one transaction, each order in a savepoint of
its own: one that is short of stock (or malformed) rolls back only its own takes and event, and its
entry in the answer says why.

A hold becomes a sale when the order's ``order_confirmed`` event arrives (consumed in batches: one
worker and one transaction for what arrived within 50 ms), or by the ``commit`` RPC. A release
that overtakes the confirmation returns the held units, and the commit that comes after it finds
nothing held and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.batch_events import batch_event_handler
from services.common.errors import InternalError, OutOfStock, ServiceError, ValidationFailed, error_entry
from services.common.logs import bound
from services.common.rpc import rpc
from services.common.schemas import load, require_id
from services.common.store import Store, UnitOfWork, upsert, utcnow
from services.common.telemetry import Telemetry, event_log_context
from services.inventory.domain import (
    COMMITTED,
    RELEASED,
    RESERVED,
    StockDelta,
    commit_delta,
    merge_items,
    order_status,
    release_delta,
    stock_view,
)
from services.inventory.models import Base, Reservation, Stock
from services.inventory.schemas import EVENT_SCHEMAS, ReserveManySchema, ReserveSchema, SetStockSchema

log = logging.getLogger(__name__)

reserve_schema = ReserveSchema()
reserve_many_schema = ReserveManySchema()


def _set_available(session: Session, product_id: int, available: int) -> dict[str, int]:
    """Upsert in one statement, so two admins creating the same row cannot collide."""
    now = utcnow()
    statement = upsert(session, Stock).values(
        product_id=product_id, available=available, reserved=0, updated_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=[Stock.product_id], set_={"available": available, "updated_at": now}
    ).returning(Stock.reserved)
    reserved = session.execute(statement).scalar_one()
    return stock_view(product_id, available, reserved)


stock = Stock.__table__
reservations = Reservation.__table__

# The reserve and commit path's statements, built once over the tables (Core, not the ORM's bulk
# UPDATE: its per-call option handling was a third of the service's profile; a statement built once
# also has its cache key memoized). Bind names differ from the column names the SET clauses use.
TAKE = (
    update(stock)
    .where(stock.c.product_id == bindparam("b_product_id"), stock.c.available >= bindparam("b_quantity"))
    .values(available=stock.c.available - bindparam("b_quantity"),
            reserved=stock.c.reserved + bindparam("b_quantity"), updated_at=bindparam("b_now"))
)
APPLY = (
    update(stock)
    .where(stock.c.product_id == bindparam("b_product_id"))
    .values(available=stock.c.available + bindparam("b_available"),
            reserved=stock.c.reserved + bindparam("b_reserved"), updated_at=bindparam("b_now"))
)
LINES = (select(reservations.c.id, reservations.c.product_id, reservations.c.quantity, reservations.c.status)
         .where(reservations.c.order_id == bindparam("order_id")).order_by(reservations.c.product_id))
LOCKED_LINES = LINES.with_for_update()
#: a batch's stock rows, locked in product order before any take (see reserve_many)
LOCK_STOCK = (select(stock.c.product_id)
              .where(stock.c.product_id.in_(bindparam("product_ids", expanding=True)))
              .order_by(stock.c.product_id).with_for_update())
#: product ids per LOCK_STOCK statement: well below SQLite's limit of bound parameters (32766)
LOCK_CHUNK = 1000
SET_LINE_STATUS = (update(reservations).where(reservations.c.id == bindparam("b_id"))
                   .values(status=bindparam("b_status"), updated_at=bindparam("b_now")))
INSERT_LINES = insert(reservations)


def _take(session: Session, product_id: int, quantity: int, now: datetime) -> bool:
    """Move ``quantity`` from available to reserved if (and only if) enough is available."""
    taken = session.execute(TAKE, {"b_product_id": product_id, "b_quantity": quantity, "b_now": now})
    return taken.rowcount == 1


def _reservation(session: Session, order_id: int) -> dict[str, Any] | None:
    """The order's reservation as ``reserve`` returns it, or None if it has none."""
    lines = session.execute(LINES, {"order_id": order_id}).all()
    if not lines:
        return None
    return {
        "order_id": order_id,
        "status": order_status(line.status for line in lines),
        "items": [{"product_id": line.product_id, "quantity": line.quantity} for line in lines],
    }


def _request(entry: dict[str, Any]) -> tuple[int, list[dict[str, int]], str | None]:
    """A reservation's order id, its lines merged and its correlation id; ValidationFailed if it is
    malformed."""
    data = load(reserve_schema, entry)
    return data["order_id"], merge_items(data["items"]), data["correlation_id"]


def _reserve(
    tx: UnitOfWork, order_id: int, lines: list[dict[str, int]], correlation_id: str | None = None
) -> dict[str, Any]:
    """Hold every line of one order or none, inside ``tx``; returns the reservation (the order's
    existing one if it has one: a retry takes nothing more).

    In a savepoint of its own, so that an order short of stock (OutOfStock) or a failed statement
    rolls back this order's takes and event only, and the rest of ``tx`` carries on.
    """
    try:
        with tx.session.begin_nested():
            existing = _reservation(tx.session, order_id)
            if existing is not None:
                return existing
            now = utcnow()
            short = [line["product_id"] for line in lines if not _take(tx.session, **line, now=now)]
            if short:
                raise OutOfStock("insufficient stock", {"product_ids": short})
            tx.session.execute(INSERT_LINES, [
                {"order_id": order_id, "status": RESERVED, **line, "created_at": now, "updated_at": now}
                for line in lines
            ])
            tx.emit("stock_reserved", {"order_id": order_id, "items": lines}, aggregate_id=order_id,
                    correlation_id=correlation_id)
    except IntegrityError:
        # a concurrent call for the same order won the unique key and committed (which is what the
        # insert waited for): the savepoint is rolled back, so its reservation is readable here
        existing = _reservation(tx.session, order_id)
        if existing is None:
            raise
        return existing
    return {"order_id": order_id, "status": RESERVED, "items": lines}


def _lock_stock(session: Session, product_ids: list[int]) -> None:
    """Lock the stock rows of ``product_ids`` (sorted) in that order (PostgreSQL; SQLite has one writer).

    A batch's orders take from their products in any order across orders, so two batches locking
    rows as they went could each wait for a row the other holds; locked in one order first, they
    queue instead of deadlocking.
    """
    for start in range(0, len(product_ids), LOCK_CHUNK):
        session.execute(LOCK_STOCK, {"product_ids": product_ids[start:start + LOCK_CHUNK]}).all()


def _transition(
    session: Session, order_id: int, delta_for: Callable[[str, int], StockDelta | None], status: str
) -> list[dict[str, int]]:
    """Move the order's lines to ``status`` where ``delta_for`` allows it; returns the lines moved.

    The lines are locked first (PostgreSQL), so a concurrent release or commit
    of the same order waits and then sees the new statuses: no double return.
    """
    now = utcnow()
    moved = []
    for line in session.execute(LOCKED_LINES, {"order_id": order_id}).all():
        delta = delta_for(line.status, line.quantity)
        if delta is None:
            continue
        session.execute(APPLY, {"b_product_id": line.product_id, "b_available": delta.available,
                                "b_reserved": delta.reserved, "b_now": now})
        session.execute(SET_LINE_STATUS, {"b_id": line.id, "b_status": status, "b_now": now})
        moved.append({"product_id": line.product_id, "quantity": line.quantity})
    return moved


def _commit(tx: UnitOfWork, order_id: int, correlation_id: str | None) -> list[dict[str, int]]:
    moved = _transition(tx.session, order_id, commit_delta, COMMITTED)
    if moved:
        tx.emit("stock_committed", {"order_id": order_id, "items": moved}, aggregate_id=order_id,
                correlation_id=correlation_id)
    return moved


class InventoryService:
    name = "inventory"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry()

    @rpc
    def get_stock(self, product_id: int) -> dict:
        """A product nobody stocked yet has nothing available (and reading writes nothing)."""
        product_id = require_id(product_id, "product_id")
        with self.store.get_session(close_on_exit=True) as session:
            stock = session.get(Stock, product_id)
            if stock is None:
                return stock_view(product_id, 0, 0)
            return stock_view(stock.product_id, stock.available, stock.reserved)

    @rpc
    def set_stock(self, product_id: int, available: int) -> dict:
        data = load(SetStockSchema(), {"product_id": product_id, "available": available})
        with self.store.transaction() as tx:
            result = _set_available(tx.session, data["product_id"], data["available"])
            tx.emit("stock_adjusted", result, aggregate_id=data["product_id"])
        return result

    @rpc
    def reserve(self, order_id: int, items: list) -> dict:
        """Hold every line or none; a second call for the same order returns the first hold."""
        order_id, lines, _ = _request({"order_id": order_id, "items": items})
        with self.store.transaction() as tx:
            return _reserve(tx, order_id, lines)

    @rpc
    def reserve_many(self, reservations: list) -> list[dict]:
        """``reserve`` for a batch of orders in one transaction, each order all-or-nothing on its
        own; the answer has one entry per reservation, in order: ``{"order_id", "reservation"}``,
        or ``{"order_id", "error"}`` for an order refused (out of stock, malformed) or failed.
        """
        entries = load(reserve_many_schema, {"reservations": reservations})["reservations"]
        outcomes: list[dict[str, Any]] = [{"order_id": entry.get("order_id")} for entry in entries]
        requests: dict[int, tuple[int, list[dict[str, int]], str | None]] = {}
        for index, entry in enumerate(entries):
            try:
                requests[index] = _request(entry)
            except ValidationFailed as exc:
                outcomes[index]["error"] = error_entry(exc)
        if not requests:
            return outcomes
        product_ids = sorted({line["product_id"] for _, lines, _ in requests.values() for line in lines})
        with self.store.transaction() as tx:
            _lock_stock(tx.session, product_ids)
            for index, (order_id, lines, correlation_id) in requests.items():
                with bound(order_id=order_id, correlation_id=correlation_id):
                    try:
                        outcomes[index]["reservation"] = _reserve(tx, order_id, lines, correlation_id)
                    except ServiceError as exc:
                        outcomes[index]["error"] = error_entry(exc)
                    except Exception:
                        # a fault, not an answer: its savepoint rolled back, the others still
                        # commit, and the caller retries this order
                        log.exception("could not reserve order %s", order_id)
                        outcomes[index]["error"] = error_entry(InternalError("internal error"))
        # one line per order, under its own correlation id (the call's is one order's only)
        for (order_id, _, correlation_id), index in zip(requests.values(), requests, strict=True):
            with bound(order_id=order_id, correlation_id=correlation_id):
                outcome = outcomes[index]
                if "reservation" in outcome:
                    log.info("order %s: stock reserved", order_id)
                else:
                    log.info("order %s: not reserved: %s", order_id, outcome["error"]["message"])
        return outcomes

    @rpc
    def release(self, order_id: int) -> dict:
        """Give the order's units back (held or sold); the saga's compensation."""
        order_id = require_id(order_id, "order_id")
        with self.store.transaction() as tx:
            moved = _transition(tx.session, order_id, release_delta, RELEASED)
            if moved:
                tx.emit("stock_released", {"order_id": order_id, "items": moved}, aggregate_id=order_id)
        return {"order_id": order_id, "released": bool(moved)}

    @rpc
    def commit(self, order_id: int) -> dict:
        """Turn the order's hold into a sale once it is paid."""
        order_id = require_id(order_id, "order_id")
        with self.store.transaction() as tx:
            moved = _commit(tx, order_id, tx.correlation_id)
        return {"order_id": order_id, "committed": bool(moved)}

    @batch_event_handler([("orders", "order_confirmed")])
    def on_orders_confirmed(self, events: list[dict[str, Any]]) -> list[int]:
        """Every confirmed order's hold becomes a sale."""
        committed = []
        with self.store.transaction() as tx:
            for event in events:
                if tx.first_delivery(event):
                    moved = _commit(tx, event["payload"]["order_id"], event.get("correlation_id"))
                    committed.append((event, moved))
        # at DEBUG: the order's INFO line here is its reservation's (a line costs the log pipeline
        # more than it costs here, docs/performance.md, round 5)
        if log.isEnabledFor(logging.DEBUG):
            for event, moved in committed:
                with event_log_context(event, "on_orders_confirmed"):
                    log.debug("stock committed: %s", moved or "nothing held")
        return []
