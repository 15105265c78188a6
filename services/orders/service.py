"""Orders: nameko entrypoints over the use cases (services/orders/use_cases.py).

Each entrypoint validates its input, runs one use case with the SQLAlchemy unit of work and the RPC
ports, and translates the domain's exceptions into the typed RPC errors callers receive.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from nameko.timer import timer

from services.common.batch_events import BatchOutcome, batch_event_handler, handler_name
from services.common.config import setting
from services.common.errors import Conflict, NotFound, ValidationFailed
from services.common.items import merge_quantities
from services.common.logs import bound
from services.common.messaging import event_handler
from services.common.rpc import Correlation, RemoteService, rpc
from services.common.schemas import load, require_id
from services.common.store import Store, utcnow
from services.common.telemetry import Telemetry, event_log_context
from services.orders import use_cases
from services.orders.adapters.price_book import PriceBook, PriceCache, apply_catalog_events
from services.orders.adapters.rpc_ports import RpcParticipants
from services.orders.adapters.unit_of_work import unit_of_work
from services.orders.domain.errors import CannotCancel, InvalidOrder, NotStalled, OrderNotFound
from services.orders.domain.saga import RetryPolicy
from services.orders.metrics import collect as collect_metrics
from services.orders.models import Base
from services.orders.schemas import (
    EVENT_SCHEMAS,
    CancelSchema,
    CreateOrderSchema,
    OrderQuerySchema,
    OrderSchema,
    StalledOrderSchema,
)

log = logging.getLogger(__name__)
order_schema = OrderSchema()
stalled_schema = StalledOrderSchema(many=True)

F = TypeVar("F", bound=Callable[..., Any])


def domain_errors(method: F) -> F:
    """Translate the domain's refusals into the typed errors that cross RPC."""

    @functools.wraps(method)
    def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except OrderNotFound as exc:
            raise NotFound(str(exc)) from None
        except InvalidOrder as exc:
            raise ValidationFailed(str(exc), exc.details) from None
        except (CannotCancel, NotStalled) as exc:
            raise Conflict(str(exc)) from None

    return translated  # type: ignore[return-value]


def has_order_id(event: dict) -> bool:
    try:
        require_id(event["payload"].get("order_id"), "order_id")
    except ValidationFailed:
        return False
    return True


def log_rejected(event: dict) -> None:
    log.error("dead-lettering %s: no order %r", event["type"], event["payload"].get("order_id"),
              extra={"error": "OrderNotFound"})


def retry_policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=int(setting("ORDERS_SAGA_MAX_ATTEMPTS", str(RetryPolicy.max_attempts))))


class OrdersService:
    name = "orders"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry(collect=collect_metrics, result_id="order_id")
    catalog = RemoteService("catalog")
    prices = PriceCache()
    inventory = RemoteService("inventory")
    payments = RemoteService("payments")
    shipping = RemoteService("shipping")
    correlation = Correlation()

    @property
    def uow(self) -> Any:
        return unit_of_work(self.store)

    @property
    def runner(self) -> use_cases.SagaRunner:
        return use_cases.SagaRunner(
            self.uow,
            RpcParticipants(self.inventory, self.payments, self.shipping),
            clock=utcnow,
            policy=retry_policy(),
        )

    @rpc
    @domain_errors
    def create_order(self, customer_id: int, items: list, request_key: str | None = None) -> dict:
        """Accept an order (PENDING; the saga takes it from there); a retry with the same
        ``request_key`` (the gateway passes the client's Idempotency-Key) gets the same order."""
        data = load(
            CreateOrderSchema(), {"customer_id": customer_id, "items": items, "request_key": request_key}
        )
        view = use_cases.place_order(
            self.uow,
            PriceBook(self.store.Session, self.catalog, self.prices),
            data["customer_id"],
            merge_quantities(data["items"]),
            data["request_key"],
            self.correlation.id,
            utcnow(),
        )
        return order_schema.dump(view)

    @rpc
    @domain_errors
    def get_order(self, order_id: int, customer_id: int | None = None) -> dict:
        return order_schema.dump(use_cases.get_order(self.uow, require_id(order_id, "order_id"), customer_id))

    @rpc
    def list_orders(self, query: dict | None = None) -> dict:
        params = load(OrderQuerySchema(), query or {})
        page = use_cases.list_orders(
            self.uow, params["customer_id"], params["status"], params["page"], params["per_page"]
        )
        return {**page, "items": order_schema.dump(page["items"], many=True)}

    @rpc
    @domain_errors
    def cancel_order(self, order_id: int, customer_id: int | None = None, reason: str | None = None) -> dict:
        require_id(order_id, "order_id")
        data = load(CancelSchema(), {} if reason is None else {"reason": reason})
        return order_schema.dump(
            use_cases.cancel_order(self.uow, order_id, customer_id, data["reason"], utcnow())
        )

    # The saga advances as soon as orders are created (a batch of them together) or a cancellation
    # requested ...
    @batch_event_handler([("orders", "order_created", "on_order_created")])
    def on_order_created(self, events: list[dict]) -> BatchOutcome:
        wellformed = {index for index, event in enumerate(events) if has_order_id(event)}
        reached = self.runner.advance([event["payload"]["order_id"] for index, event in enumerate(events)
                                       if index in wellformed])
        for index, event in enumerate(events):
            with event_log_context(event, "on_order_created"):
                if index in wellformed:
                    order_id = event["payload"]["order_id"]
                    log.info("order %s: saga ran, %s", order_id, reached.get(order_id, "nothing due here"))
                else:
                    log_rejected(event)
        return BatchOutcome(reject=sorted(set(range(len(events))) - wellformed))

    @event_handler("orders", "order_cancellation_requested")
    def on_cancellation_requested(self, event: dict) -> None:
        self.runner.advance([event["payload"]["order_id"]])

    # ... and resumes here after a failure or a crash.
    @rpc
    def resume(self, order_id: int) -> None:
        self.runner.advance([require_id(order_id, "order_id")])

    @timer(interval=1)
    def resume_due_sagas(self) -> None:
        """Resume the sagas due again (a failed step's backoff is over, or a crash left them),
        together, in this worker: the runner stamps each order's own correlation id on what it
        emits and logs, so they need no worker of their own (one RPC each was most of this timer's
        cost under load)."""
        kicked = use_cases.kick_due(self.uow, utcnow())
        if not kicked:
            return
        reached = self.runner.advance([order_id for order_id, _ in kicked])
        for order_id, correlation_id in kicked:
            with bound(order_id=order_id, correlation_id=correlation_id):
                log.info("order %s: saga resumed, %s", order_id, reached.get(order_id, "nothing due here"))

    @batch_event_handler(
        [("catalog", "product_created"), ("catalog", "product_updated"), ("catalog", "product_deactivated")]
    )
    def on_catalog_events(self, events: list[dict]) -> BatchOutcome:
        """Keep the local prices current (adapters/price_book.py)."""
        with self.store.transaction() as tx:
            rejected = apply_catalog_events(tx.session, events)
        self.prices.clear()  # committed: the next order reads the new state
        return BatchOutcome(reject=rejected)

    # Operators: sagas parked after too many technical failures (make stalled, /api/admin/stalled-orders)
    @rpc
    def list_stalled(self) -> list:
        return stalled_schema.dump(use_cases.stalled_orders(self.uow))

    @rpc
    @domain_errors
    def resume_stalled(self, order_id: int) -> dict:
        return order_schema.dump(
            use_cases.resume_stalled(self.uow, require_id(order_id, "order_id"), utcnow())
        )

    @batch_event_handler([("shipping", event_type, handler_name(event_type))
                          for event_type in use_cases.SHIPPING_TRANSITIONS])
    def on_shipping_events(self, events: list[dict]) -> BatchOutcome:
        """Shipped and delivered parcels move their orders on, a batch in one transaction."""
        wellformed = [index for index, event in enumerate(events) if has_order_id(event)]
        unknown = use_cases.record_shipping(self.uow, [events[index] for index in wellformed], utcnow())
        rejected = (set(range(len(events))) - set(wellformed)) | {wellformed[index] for index in unknown}
        # a parcel's progress at DEBUG: the order's INFO lines are its creation and its saga's, and
        # every line costs the log pipeline more than it costs here (docs/performance.md, round 5)
        progress = log.isEnabledFor(logging.DEBUG)
        for index, event in enumerate(events):
            if index in rejected or progress:
                with event_log_context(event, handler_name(event["type"])):
                    if index in rejected:
                        log_rejected(event)
                    else:
                        log.debug("order %s: %s", event["payload"]["order_id"], event["type"])
        return BatchOutcome(reject=sorted(rejected))
