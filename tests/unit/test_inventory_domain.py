import pytest

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


def test_merge_items_sums_duplicates_and_sorts_by_product():
    items = [
        {"product_id": 7, "quantity": 2},
        {"product_id": 3, "quantity": 1},
        {"product_id": 7, "quantity": 5},
    ]
    assert merge_items(items) == [{"product_id": 3, "quantity": 1}, {"product_id": 7, "quantity": 7}]


def test_merge_items_of_nothing_is_nothing():
    assert merge_items([]) == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RESERVED, StockDelta(available=4, reserved=-4)),
        (COMMITTED, StockDelta(available=4, reserved=0)),
        (RELEASED, None),
    ],
)
def test_release_returns_held_and_sold_units_once(status, expected):
    assert release_delta(status, 4) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [(RESERVED, StockDelta(available=0, reserved=-3)), (COMMITTED, None), (RELEASED, None)],
)
def test_commit_only_moves_held_units(status, expected):
    assert commit_delta(status, 3) == expected


def test_order_status_is_the_least_advanced_line():
    assert order_status([RESERVED, RESERVED]) == RESERVED
    assert order_status([COMMITTED]) == COMMITTED
    assert order_status([RELEASED, COMMITTED]) == COMMITTED
    assert order_status([RELEASED, RESERVED, COMMITTED]) == RESERVED


def test_stock_view_shape():
    assert stock_view(1, 5, 2) == {"product_id": 1, "available": 5, "reserved": 2}
