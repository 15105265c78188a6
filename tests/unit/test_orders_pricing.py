import pytest

from services.common.errors import ValidationFailed
from services.common.items import merge_quantities
from services.orders.domain.errors import InvalidOrder
from services.orders.domain.pricing import price_order


def product(id, price, currency="USD", active=True):
    return {"id": id, "sku": f"SKU-{id}", "name": f"P{id}", "price_cents": price, "currency": currency,
            "active": active}


def test_totals_are_integer_cents_from_the_snapshot_prices():
    priced = price_order({1: 2, 2: 1}, [product(1, 1899), product(2, 250)])
    assert priced.total_cents == 2 * 1899 + 250 and priced.currency == "USD"
    assert [(line.product_id, line.total_cents) for line in priced.lines] == [(1, 3798), (2, 250)]


def test_repeated_products_are_merged():
    assert merge_quantities([{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}]) == {1: 3}


def test_unknown_and_inactive_products_are_listed():
    with pytest.raises(InvalidOrder) as info:
        price_order({1: 1, 2: 1, 3: 1}, [product(1, 100), product(2, 100, active=False)])
    assert info.value.details["fields"]["items"] == {"2": ["product is not available"],
                                                     "3": ["no such product"]}


def test_one_currency_per_order():
    with pytest.raises(InvalidOrder):
        price_order({1: 1, 2: 1}, [product(1, 100, "USD"), product(2, 100, "EUR")])


def test_merged_quantities_and_totals_stay_within_what_participants_accept():
    with pytest.raises(ValidationFailed):
        merge_quantities([{"product_id": 1, "quantity": 6000}, {"product_id": 1, "quantity": 6000}])
    with pytest.raises(InvalidOrder):
        price_order({1: 10_000}, [product(1, 10**9)])
