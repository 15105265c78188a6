import json
import time

import eventlet
import pytest

from services.cart.models import Cart, CartItem
from services.cart.service import CartService
from services.common.errors import Conflict, NotFound, OutOfStock, ServiceUnavailable, ValidationFailed
from services.common.messaging import event_handler
from services.common.rpc import rpc
from tests.helpers import row_count

ORDER = {"id": 7, "status": "PENDING"}
#: what the orders stand-in raises instead of answering (None: it answers)
ORDERS_FAILURE: list[Exception] = []
ORDERS_CALLS: list[dict] = []
RECEIVED: list[tuple[str, dict]] = []


class CatalogStandIn:
    """Product 1 and 3 are on sale, 2 is withdrawn, nothing else exists."""

    name = "catalog"

    @rpc
    def get_product(self, product_id: int) -> dict:
        if product_id in (1, 2, 3):
            return {"id": product_id, "sku": f"SKU-{product_id}", "price_cents": 100, "currency": "USD",
                    "active": product_id != 2}
        raise NotFound(f"product {product_id} not found")


class OrdersStandIn:
    name = "orders"

    @rpc
    def create_order(self, customer_id: int, items: list, request_key: str) -> dict:
        ORDERS_CALLS.append({"customer_id": customer_id, "items": items, "request_key": request_key})
        if ORDERS_FAILURE:
            raise ORDERS_FAILURE[0]
        return {**ORDER, "customer_id": customer_id, "items": items}


class CartEventsProbe:
    name = "cart_events_probe"

    @event_handler("cart", "cart_item_added")
    def added(self, envelope: dict) -> None:
        RECEIVED.append(("cart_item_added", envelope["payload"]))

    @event_handler("cart", "cart_item_updated")
    def updated(self, envelope: dict) -> None:
        RECEIVED.append(("cart_item_updated", envelope["payload"]))

    @event_handler("cart", "cart_item_removed")
    def removed(self, envelope: dict) -> None:
        RECEIVED.append(("cart_item_removed", envelope["payload"]))

    @event_handler("cart", "cart_checked_out")
    def checked_out(self, envelope: dict) -> None:
        RECEIVED.append(("cart_checked_out", envelope["payload"]))


@pytest.fixture(autouse=True)
def reset_stand_ins():
    ORDERS_FAILURE.clear()
    ORDERS_CALLS.clear()
    RECEIVED.clear()


@pytest.fixture
def container(start_service, database_flavour):
    start_service(CatalogStandIn, database=False)
    return start_service(CartService, flavour=database_flavour)


@pytest.fixture
def cart(container, start_service, rpc_client):
    start_service(OrdersStandIn, database=False)
    return rpc_client("cart")


def row_counts(container) -> tuple[int, int]:
    return row_count(container, Cart), row_count(container, CartItem)


def canonical(events: list[tuple[str, dict]]) -> list[str]:
    """Events in a comparable form; delivery order across event types is not guaranteed."""
    return sorted(json.dumps(event, sort_keys=True) for event in events)


def lines(cart_view: dict) -> list[tuple[int, int]]:
    return [(item["product_id"], item["quantity"]) for item in cart_view["items"]]


def test_reading_a_missing_cart_creates_nothing(cart, container):
    assert cart.get_cart(5) == {"customer_id": 5, "items": [], "updated_at": None}
    assert row_counts(container) == (0, 0)


def test_add_update_and_remove_lines(cart):
    view = cart.add_item(5, {"product_id": 1, "quantity": 2})
    assert view["customer_id"] == 5 and lines(view) == [(1, 2)] and view["updated_at"].endswith("+00:00")
    assert lines(cart.add_item(5, {"product_id": 1, "quantity": 3})) == [(1, 5)]
    assert lines(cart.add_item(5, {"product_id": 3, "quantity": 1})) == [(1, 5), (3, 1)]
    assert lines(cart.update_item(5, 3, 4)) == [(1, 5), (3, 4)]
    assert lines(cart.remove_item(5, 1)) == [(3, 4)]
    assert lines(cart.get_cart(5)) == [(3, 4)]
    assert cart.get_cart(6)["items"] == []  # one cart per customer

    with pytest.raises(NotFound):
        cart.update_item(5, 1, 2)
    with pytest.raises(NotFound):
        cart.remove_item(5, 1)
    with pytest.raises(NotFound):
        cart.update_item(6, 3, 2)
    with pytest.raises(NotFound):
        cart.remove_item(6, 3)


def test_catalog_decides_what_can_be_added(cart, container):
    with pytest.raises(Conflict, match="product is not available"):
        cart.add_item(5, {"product_id": 2, "quantity": 1})
    with pytest.raises(NotFound):
        cart.add_item(5, {"product_id": 999, "quantity": 1})
    assert row_counts(container) == (0, 0)


def test_a_line_holds_at_most_10000(cart):
    cart.add_item(5, {"product_id": 1, "quantity": 9_999})
    with pytest.raises(ValidationFailed) as info:
        cart.add_item(5, {"product_id": 1, "quantity": 2})
    assert "quantity" in info.value.details["fields"]
    assert lines(cart.get_cart(5)) == [(1, 9_999)]
    assert lines(cart.add_item(5, {"product_id": 1, "quantity": 1})) == [(1, 10_000)]


def test_concurrent_adds_add_up(cart, rpc_client):
    proxies = [rpc_client("cart") for _ in range(5)]
    pool = eventlet.GreenPool(5)
    list(pool.imap(lambda proxy: proxy.add_item(9, {"product_id": 1, "quantity": 2}), proxies))
    assert lines(cart.get_cart(9)) == [(1, 10)]


def test_checkout_places_the_order_then_empties_the_cart(cart):
    cart.add_item(5, {"product_id": 3, "quantity": 1})
    cart.add_item(5, {"product_id": 1, "quantity": 2})
    cart.add_item(6, {"product_id": 1, "quantity": 1})

    order = cart.checkout(5)
    assert order["id"] == 7 and order["status"] == "PENDING"
    assert [{k: v for k, v in call.items() if k != "request_key"} for call in ORDERS_CALLS] == [
        {"customer_id": 5, "items": [{"product_id": 1, "quantity": 2}, {"product_id": 3, "quantity": 1}]}]
    assert cart.get_cart(5)["items"] == []
    assert lines(cart.get_cart(6)) == [(1, 1)]  # another customer's cart is untouched
    with pytest.raises(Conflict, match="cart is empty"):
        cart.checkout(5)
    with pytest.raises(Conflict, match="cart is empty"):
        cart.checkout(8)  # never had a cart
    assert len(ORDERS_CALLS) == 1


@pytest.mark.parametrize("failure", [OutOfStock("product 1 is out of stock", {"product_id": 1}),
                                     ServiceUnavailable("payments timed out")])
def test_a_failed_order_leaves_the_cart_intact(cart, failure):
    cart.add_item(5, {"product_id": 1, "quantity": 2})
    before = cart.get_cart(5)
    ORDERS_FAILURE.append(failure)
    with pytest.raises(type(failure)) as info:
        cart.checkout(5)
    assert info.value.message == failure.message
    assert cart.get_cart(5) == before

    ORDERS_FAILURE.clear()  # the customer retries once the problem is gone
    assert cart.checkout(5)["id"] == 7
    assert cart.get_cart(5)["items"] == []
    # the retry named the same request: had orders made the order despite the error, it returns it
    first, retry = ORDERS_CALLS
    assert first["request_key"] == retry["request_key"]


def test_each_state_of_the_cart_checks_out_under_its_own_request_key(cart):
    cart.add_item(5, {"product_id": 1, "quantity": 2})
    cart.checkout(5)
    cart.add_item(5, {"product_id": 1, "quantity": 2})  # the same lines again, later: a new order
    cart.checkout(5)
    first, second = ORDERS_CALLS
    assert first["items"] == second["items"]
    assert first["request_key"] != second["request_key"]


def test_orders_down_is_unavailable_and_keeps_the_cart(container, rpc_client):
    cart = rpc_client("cart", timeout=30)
    cart.add_item(5, {"product_id": 1, "quantity": 2})
    with pytest.raises(ServiceUnavailable):
        cart.checkout(5)
    assert lines(cart.get_cart(5)) == [(1, 2)]


def test_bad_input_is_rejected_and_writes_nothing(cart, container):
    cart.add_item(5, {"product_id": 1, "quantity": 2})
    before = cart.get_cart(5)
    bad_items = [
        {"product_id": 1, "quantity": -1},
        {"product_id": 1, "quantity": 0},
        {"product_id": 1, "quantity": 10_001},
        {"product_id": 1, "quantity": "3"},
        {"product_id": 1, "quantity": 2.5},
        {"product_id": 1, "quantity": True},
        {"product_id": "1; DROP TABLE cart_items; --", "quantity": 1},
        {"product_id": -1, "quantity": 1},
        {"product_id": 1, "quantity": 10**100},
        {"product_id": 1, "quantity": 1, "price_cents": 0},
        {"product_id": 1},
        {"product_id": "x" * 100_000, "quantity": 1},
        [1, 1],
        None,
    ]
    for item in bad_items:
        with pytest.raises(ValidationFailed):
            cart.add_item(5, item)
    for customer_id in ["5 OR 1=1", -5, 0, True, 5.0, None, "x" * 100_000]:
        with pytest.raises(ValidationFailed):
            cart.get_cart(customer_id)
        with pytest.raises(ValidationFailed):
            cart.add_item(customer_id, {"product_id": 1, "quantity": 1})
        with pytest.raises(ValidationFailed):
            cart.update_item(customer_id, 1, 1)
        with pytest.raises(ValidationFailed):
            cart.remove_item(customer_id, 1)
        with pytest.raises(ValidationFailed):
            cart.checkout(customer_id)
    for quantity in [0, -3, "4", 10_001, None, 1.5]:
        with pytest.raises(ValidationFailed):
            cart.update_item(5, 1, quantity)
    for product_id in ["1 OR 1=1", 0, None, [1]]:
        with pytest.raises(ValidationFailed):
            cart.update_item(5, product_id, 1)
        with pytest.raises(ValidationFailed):
            cart.remove_item(5, product_id)

    assert cart.get_cart(5) == before
    assert row_counts(container) == (1, 1)
    assert ORDERS_CALLS == []


def test_state_changes_are_published(start_service, cart):
    start_service(CartEventsProbe, database=False)
    cart.add_item(5, {"product_id": 1, "quantity": 2})
    cart.add_item(5, {"product_id": 1, "quantity": 1})
    cart.add_item(5, {"product_id": 3, "quantity": 1})
    cart.update_item(5, 3, 3)
    cart.update_item(5, 3, 3)  # no change, no event
    cart.remove_item(5, 3)
    cart.checkout(5)

    deadline = time.monotonic() + 10
    while len(RECEIVED) < 6 and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    eventlet.sleep(0.3)
    assert canonical(RECEIVED) == canonical([
        ("cart_item_added", {"customer_id": 5, "product_id": 1, "quantity": 2, "line_quantity": 2}),
        ("cart_item_added", {"customer_id": 5, "product_id": 1, "quantity": 1, "line_quantity": 3}),
        ("cart_item_added", {"customer_id": 5, "product_id": 3, "quantity": 1, "line_quantity": 1}),
        ("cart_item_updated", {"customer_id": 5, "product_id": 3, "quantity": 3}),
        ("cart_item_removed", {"customer_id": 5, "product_id": 3}),
        ("cart_checked_out", {"customer_id": 5, "order_id": 7}),
    ])
