import pytest

from services.catalog.service import CatalogService
from services.common.errors import Conflict, NotFound, ValidationFailed

COFFEE = {"sku": "COF-1", "name": "Coffee Beans", "description": "1kg bag", "category": "grocery",
          "price_cents": 1899, "currency": "USD"}


@pytest.fixture
def catalog(start_service, rpc_client, database_flavour):
    start_service(CatalogService, flavour=database_flavour)
    return rpc_client("catalog")


def test_create_get_search_and_deactivate(catalog):
    created = catalog.create_product(COFFEE)
    assert created["id"] >= 1 and created["active"] is True and created["price_cents"] == 1899
    catalog.create_product({**COFFEE, "sku": "TEA-1", "name": "Green tea", "category": "tea"})

    assert catalog.get_product(created["id"])["sku"] == "COF-1"
    found = catalog.list_products({"q": "coffee"})
    assert [p["sku"] for p in found["items"]] == ["COF-1"] and found["total"] == 1
    assert [p["sku"] for p in catalog.list_products({"category": "tea"})["items"]] == ["TEA-1"]
    page = catalog.list_products({"per_page": 1, "page": 2})
    assert page["total"] == 2 and [p["sku"] for p in page["items"]] == ["TEA-1"]

    updated = catalog.update_product(created["id"], {"price_cents": 1999})
    assert updated["price_cents"] == 1999

    catalog.deactivate_product(created["id"])
    assert [p["sku"] for p in catalog.list_products({})["items"]] == ["TEA-1"]
    assert catalog.get_product(created["id"])["active"] is False


def test_errors_are_typed_and_write_nothing(catalog):
    catalog.create_product(COFFEE)
    with pytest.raises(Conflict):
        catalog.create_product(COFFEE)
    with pytest.raises(NotFound):
        catalog.get_product(999)
    with pytest.raises(ValidationFailed) as info:
        catalog.create_product({**COFFEE, "sku": "X", "price_cents": -5, "currency": "usd", "evil": 1})
    fields = info.value.details["fields"]
    assert {"price_cents", "currency", "evil"} <= set(fields)
    with pytest.raises(ValidationFailed):
        catalog.create_product({**COFFEE, "sku": "Y", "price_cents": "12.5"})
    with pytest.raises(ValidationFailed):
        catalog.create_product({**COFFEE, "sku": "'; DROP TABLE products; --"})
    with pytest.raises(ValidationFailed):
        catalog.create_product({**COFFEE, "sku": "Z", "name": "x" * 100_000})
    with pytest.raises(ValidationFailed):
        catalog.get_product("1 OR 1=1")
    assert catalog.list_products({})["total"] == 1


def test_products_by_sku_in_one_call(catalog):
    coffee = catalog.create_product(COFFEE)
    tea = catalog.create_product({**COFFEE, "sku": "TEA-1", "name": "Green tea", "category": "tea"})
    catalog.deactivate_product(tea["id"])

    found = catalog.get_products_by_sku(["TEA-1", "COF-1", "NOPE-1", "COF-1"])
    assert sorted((p["sku"], p["id"], p["active"]) for p in found) == [
        ("COF-1", coffee["id"], True), ("TEA-1", tea["id"], False)]  # inactive too: orders decide
    assert catalog.get_products_by_sku(["cof-1"]) == []  # a SKU is matched exactly
    for bad in ([], ["12345"], ["'; DROP TABLE products; --"], ["A"] * 101, "COF-1", None):
        with pytest.raises(ValidationFailed):
            catalog.get_products_by_sku(bad)


def test_a_sku_of_digits_only_is_refused(catalog):
    # digits only name a product id in /api/inventory/{product_id_or_sku}
    with pytest.raises(ValidationFailed) as info:
        catalog.create_product({**COFFEE, "sku": "12345"})
    assert "sku" in info.value.details["fields"]
    assert catalog.create_product({**COFFEE, "sku": "123-A"})["sku"] == "123-A"
