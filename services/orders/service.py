"""Orders: accepts orders and drives each one's saga to a final state."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from nameko.rpc import RpcProxy
from nameko.timer import timer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.common.errors import Conflict, NotFound
from services.common.items import merge_quantities
from services.common.messaging import event_handler
from services.common.rpc import UNREACHABLE, Correlation, RemoteService, rpc
from services.common.schemas import load, require_id
from services.common.store import Store, paginate, utcnow
from services.common.telemetry import Telemetry
from services.orders import pricing, saga
from services.orders.metrics import collect as collect_metrics
from services.orders.models import Base, Order, OrderItem
from services.orders.runner import (
    FIRST_CHECK,
    Participants,
    SagaRunner,
    apply_to_order,
    due_orders,
    load_for_update,
    record_status,
)
from services.orders.schemas import (
    EVENT_SCHEMAS,
    CancelSchema,
    CreateOrderSchema,
    OrderQuerySchema,
    OrderSchema,
)

log = logging.getLogger(__name__)
order_schema = OrderSchema()
#: how long a recovery kick keeps the timer from kicking the same order again
KICK_GRACE = timedelta(seconds=10)


class OrdersService:
    name = "orders"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry(collect=collect_metrics, result_id="order_id")
    catalog = RemoteService("catalog")
    inventory = RemoteService("inventory")
    payments = RemoteService("payments")
    shipping = RemoteService("shipping")
    myself = RpcProxy("orders")
    correlation = Correlation()

    @property
    def runner(self) -> SagaRunner:
        return SagaRunner(self.store, Participants(self.inventory, self.payments, self.shipping))

    @rpc
    def create_order(self, customer_id: int, items: list, request_key: str | None = None) -> dict:
        """Accept an order (PENDING; the saga takes it from there).

        ``request_key`` makes a retry safe: a caller that timed out and calls again with the same key
        (the gateway passes the client's Idempotency-Key, the cart one per cart state) gets the
        order the first call made instead of a second one.
        """
        data = load(CreateOrderSchema(),
                    {"customer_id": customer_id, "items": items, "request_key": request_key})
        if data["request_key"] is not None:
            existing = self._order_for_request(data["customer_id"], data["request_key"])
            if existing is not None:
                return existing
        quantities = merge_quantities(data["items"])
        products = self.catalog.call("get_products", list(quantities))
        priced = pricing.price_order(quantities, products)
        try:
            with self.store.transaction() as tx:
                order = Order(
                    customer_id=data["customer_id"], request_key=data["request_key"],
                    status=saga.Status.PENDING.value, currency=priced.currency,
                    total_cents=priced.total_cents, correlation_id=self.correlation.id,
                    next_attempt_at=utcnow() + FIRST_CHECK,
                )
                tx.session.add(order)
                tx.session.flush()
                tx.session.add_all(
                    OrderItem(order_id=order.id, product_id=line.product_id, sku=line.sku, name=line.name,
                              quantity=line.quantity, unit_price_cents=line.unit_price_cents,
                              line_total_cents=line.total_cents)
                    for line in priced.lines
                )
                tx.session.flush()
                tx.session.refresh(order)
                record_status(tx, order, saga.Status.PENDING)
                return order_schema.dump(order)
        except IntegrityError:
            # a concurrent call with the same key committed first: its order is the answer
            existing = self._order_for_request(data["customer_id"], data["request_key"])
            if existing is None:
                raise
            return existing

    def _order_for_request(self, customer_id: int, request_key: str | None) -> dict | None:
        with self.store.get_session(close_on_exit=True) as session:
            order = session.scalars(select(Order).where(Order.customer_id == customer_id,
                                                        Order.request_key == request_key)).first()
            return None if order is None else order_schema.dump(order)

    @rpc
    def get_order(self, order_id: int, customer_id: int | None = None) -> dict:
        require_id(order_id, "order_id")
        with self.store.get_session(close_on_exit=True) as session:
            order = session.get(Order, order_id)
            if order is None or (customer_id is not None and order.customer_id != customer_id):
                raise NotFound(f"order {order_id} not found")
            return order_schema.dump(order)

    @rpc
    def list_orders(self, query: dict | None = None) -> dict:
        params = load(OrderQuerySchema(), query or {})
        statement = select(Order)
        if params["customer_id"] is not None:
            statement = statement.where(Order.customer_id == params["customer_id"])
        if params["status"]:
            statement = statement.where(Order.status == params["status"])
        with self.store.get_session(close_on_exit=True) as session:
            return paginate(session, statement, [Order.id.desc()], params, order_schema)

    @rpc
    def cancel_order(self, order_id: int, customer_id: int | None = None, reason: str | None = None) -> dict:
        require_id(order_id, "order_id")
        data = load(CancelSchema(), {} if reason is None else {"reason": reason})
        with self.store.transaction() as tx:
            order = load_for_update(tx.session, order_id, customer_id)
            state = order.saga
            try:
                requested = saga.request_cancel(state, data["reason"])
            except saga.CannotCancel as exc:
                raise Conflict(str(exc)) from None
            if requested:
                order.saga = state
                order.saga_active = True
                order.next_attempt_at = utcnow() + FIRST_CHECK
                tx.emit("order_cancellation_requested",
                        {"order_id": order.id, "customer_id": order.customer_id, "reason": data["reason"]},
                        aggregate_id=order.id)
            return order_schema.dump(order)

    # The saga advances as soon as an order is created or a cancellation requested ...
    @event_handler("orders", "order_created")
    def on_order_created(self, event: dict) -> None:
        self.runner.advance(event["payload"]["order_id"])

    @event_handler("orders", "order_cancellation_requested")
    def on_cancellation_requested(self, event: dict) -> None:
        self.runner.advance(event["payload"]["order_id"])

    # ... and resumes here after a failure or a crash.
    @rpc
    def resume(self, order_id: int) -> None:
        self.runner.advance(require_id(order_id, "order_id"))

    @timer(interval=1)
    def resume_due_sagas(self) -> None:
        now = utcnow()
        with self.store.transaction() as tx:
            due = due_orders(tx.session, now)
            for order in due:
                order.next_attempt_at = now + KICK_GRACE
            kicks = [(order.id, order.correlation_id) for order in due]
        for order_id, correlation_id in kicks:
            # each resume runs in its own worker, carrying its order's correlation id
            self.correlation.id = correlation_id
            try:
                self.myself.resume.call_async(order_id)
            except UNREACHABLE:
                log.warning("broker unreachable; order %s is resumed at a later tick", order_id)
                return

    @event_handler("shipping", "shipment_shipped")
    def on_shipment_shipped(self, event: dict) -> None:
        self._shipping_update(event, saga.shipped)

    @event_handler("shipping", "shipment_delivered")
    def on_shipment_delivered(self, event: dict) -> None:
        self._shipping_update(event, saga.delivered)

    def _shipping_update(self, event: dict, transition: Any) -> None:
        with self.store.transaction() as tx:
            if not tx.first_delivery(event):
                return
            payload = event["payload"]
            order = load_for_update(tx.session, require_id(payload.get("order_id"), "order_id"))
            order.tracking_number = payload.get("tracking_number") or order.tracking_number
            apply_to_order(tx, order, transition)
