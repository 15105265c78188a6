"""Cart: what a customer intends to buy, turned into an order at checkout.

Every write locks the customer's cart row first (``FOR UPDATE`` on
PostgreSQL), so concurrent adds to one cart add up instead of overwriting
each other. Remote calls (catalog, orders) happen before a transaction opens.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.cart.domain import (
    added_quantity,
    checkout_key,
    ensure_available,
    ensure_room,
    order_items,
    remaining_after_checkout,
)
from services.cart.models import Base, Cart, CartItem
from services.cart.schemas import EVENT_SCHEMAS, CartItemSchema, CartSchema
from services.common.errors import Conflict, NotFound
from services.common.rpc import RemoteService, rpc
from services.common.schemas import load, require_id
from services.common.store import Store, utcnow
from services.common.telemetry import Telemetry

cart_schema = CartSchema()


def _view(customer_id: int, cart: Cart | None) -> dict[str, Any]:
    """A missing cart reads as an empty one."""
    return cart_schema.dump({
        "customer_id": customer_id,
        "items": cart.items if cart else [],
        "updated_at": cart.updated_at if cart else None,
    })


def _locked_cart(session: Session, customer_id: int) -> Cart | None:
    return session.scalars(select(Cart).where(Cart.customer_id == customer_id).with_for_update()).first()


def _find_line(cart: Cart | None, product_id: int) -> CartItem | None:
    return next((line for line in cart.items if line.product_id == product_id), None) if cart else None


def _line(cart: Cart | None, product_id: int) -> CartItem:
    line = _find_line(cart, product_id)
    if line is None:
        raise NotFound(f"product {product_id} is not in the cart")
    return line


def _lines(cart: Cart | None) -> dict[int, int]:
    return {line.product_id: line.quantity for line in cart.items} if cart else {}


class CartService:
    name = "cart"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry()
    catalog = RemoteService("catalog")
    orders = RemoteService("orders", timeout=10)

    @rpc
    def get_cart(self, customer_id: int) -> dict:
        customer_id = require_id(customer_id, "customer_id")
        with self.store.get_session(close_on_exit=True) as session:
            return _view(customer_id, session.get(Cart, customer_id))

    @rpc
    def add_item(self, customer_id: int, item: dict) -> dict:
        customer_id = require_id(customer_id, "customer_id")
        data = load(CartItemSchema(), item)
        product_id = data["product_id"]
        ensure_available(self.catalog.call("get_product", product_id))
        self._ensure_cart(customer_id)
        with self.store.transaction() as tx:
            cart = _locked_cart(tx.session, customer_id)
            line = _find_line(cart, product_id)
            if line is None:
                ensure_room(len(cart.items))
                line = CartItem(product_id=product_id, quantity=0)
                cart.items.append(line)
            line.quantity = added_quantity(line.quantity, data["quantity"])
            cart.updated_at = utcnow()
            tx.session.flush()
            tx.emit("cart_item_added", {"customer_id": customer_id, "product_id": product_id,
                                        "quantity": data["quantity"], "line_quantity": line.quantity},
                    aggregate_id=customer_id)
            return _view(customer_id, cart)

    def _ensure_cart(self, customer_id: int) -> None:
        """Create the cart row on first use, in its own transaction, so the add can lock it."""
        try:
            with self.store.transaction() as tx:
                if tx.session.get(Cart, customer_id) is None:
                    tx.session.add(Cart(customer_id=customer_id))
        except IntegrityError:
            pass  # a concurrent first add created it; that is all we wanted

    @rpc
    def update_item(self, customer_id: int, product_id: int, quantity: int) -> dict:
        customer_id = require_id(customer_id, "customer_id")
        data = load(CartItemSchema(), {"product_id": product_id, "quantity": quantity})
        with self.store.transaction() as tx:
            cart = _locked_cart(tx.session, customer_id)
            line = _line(cart, data["product_id"])
            if line.quantity != data["quantity"]:
                line.quantity = data["quantity"]
                cart.updated_at = utcnow()
                tx.session.flush()
                tx.emit("cart_item_updated", {"customer_id": customer_id, **data}, aggregate_id=customer_id)
            return _view(customer_id, cart)

    @rpc
    def remove_item(self, customer_id: int, product_id: int) -> dict:
        customer_id = require_id(customer_id, "customer_id")
        product_id = require_id(product_id, "product_id")
        with self.store.transaction() as tx:
            cart = _locked_cart(tx.session, customer_id)
            line = _line(cart, product_id)
            cart.items.remove(line)
            cart.updated_at = utcnow()
            tx.session.flush()
            tx.emit("cart_item_removed", {"customer_id": customer_id, "product_id": product_id},
                    aggregate_id=customer_id)
            return _view(customer_id, cart)

    @rpc
    def checkout(self, customer_id: int) -> dict:
        """Place an order for the cart's lines; the cart changes only once the order exists.

        Any error from orders (typed, or ServiceUnavailable) propagates with
        the cart untouched, so the customer can simply try again: the retry
        carries the same request key, so an order the first attempt made
        despite the error is returned rather than made twice.
        """
        customer_id = require_id(customer_id, "customer_id")
        with self.store.get_session(close_on_exit=True) as session:
            cart = session.get(Cart, customer_id)
            ordered = _lines(cart)
            if not ordered:
                raise Conflict("cart is empty")
            request_key = checkout_key(cart.updated_at)
        order = self.orders.call("create_order", customer_id=customer_id, items=order_items(ordered),
                                 request_key=request_key)
        with self.store.transaction() as tx:
            cart = _locked_cart(tx.session, customer_id)
            remaining = remaining_after_checkout(_lines(cart), ordered)
            for line in list(cart.items):
                if line.product_id in remaining:
                    line.quantity = remaining[line.product_id]
                else:
                    cart.items.remove(line)
            cart.updated_at = utcnow()
            tx.session.flush()
            tx.emit("cart_checked_out", {"customer_id": customer_id, "order_id": order["id"]},
                    aggregate_id=customer_id)
        return order
