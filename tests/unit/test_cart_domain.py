from datetime import UTC, datetime

import pytest

from services.cart.domain import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    added_quantity,
    checkout_key,
    ensure_available,
    ensure_room,
    order_items,
    remaining_after_checkout,
)
from services.common.errors import Conflict, ValidationFailed


def test_adding_accumulates_up_to_the_cap():
    assert added_quantity(0, 3) == 3
    assert added_quantity(3, 2) == 5
    assert added_quantity(MAX_LINE_QUANTITY - 1, 1) == MAX_LINE_QUANTITY
    with pytest.raises(ValidationFailed) as info:
        added_quantity(MAX_LINE_QUANTITY - 1, 2)
    assert "quantity" in info.value.details["fields"]


def test_only_active_products_are_available():
    ensure_available({"id": 1, "active": True})
    for product in ({"id": 2, "active": False}, {"id": 3}):
        with pytest.raises(Conflict, match="product is not available"):
            ensure_available(product)


def test_cart_size_is_bounded():
    ensure_room(MAX_LINES - 1)
    with pytest.raises(Conflict):
        ensure_room(MAX_LINES)


def test_order_items_are_sorted_by_product():
    assert order_items({5: 1, 2: 3}) == [{"product_id": 2, "quantity": 3}, {"product_id": 5, "quantity": 1}]


def test_checkout_removes_exactly_what_was_ordered():
    ordered = {1: 2, 2: 1}
    assert remaining_after_checkout(ordered, ordered) == {}
    # added while the order was being placed: the extra stays
    assert remaining_after_checkout({1: 5, 2: 1, 3: 4}, ordered) == {1: 3, 3: 4}
    # lowered or removed meanwhile: nothing negative is left behind
    assert remaining_after_checkout({1: 1}, ordered) == {}


def test_a_checkout_is_named_after_the_state_of_the_cart():
    moment = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
    assert checkout_key(moment) == checkout_key(moment)
    assert checkout_key(moment) != checkout_key(moment.replace(microsecond=123457))
    assert len(checkout_key(moment)) <= 100  # orders' request_key column
