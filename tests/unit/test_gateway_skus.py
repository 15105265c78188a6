"""Products named by SKU in orders, cart lines and stock reads (RPC layer faked)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from gateway import create_app
from gateway.testing import FakeTransport, bearer, settings_for_tests, token_for
from services.common import errors as svc

COFFEE = {"id": 1, "sku": "COFFEE-1KG", "name": "Coffee", "description": "", "category": "grocery",
          "price_cents": 1899, "currency": "USD", "active": True, "created_at": None, "updated_at": None}
MUG = {**COFFEE, "id": 3, "sku": "MUG-STEEL", "name": "Mug"}
ORDER = {"id": 11, "customer_id": 5, "status": "PENDING", "reason": None, "currency": "USD",
         "total_cents": 1899, "cancellation_requested": False, "items": [], "history": [],
         "created_at": None, "updated_at": None}
CART = {"customer_id": 5, "items": [{"product_id": 1, "quantity": 2}], "updated_at": None}


def by_sku(skus: list[str]) -> list[dict]:
    return [product for product in (COFFEE, MUG) if product["sku"] in skus]


def by_id(product_id: int) -> dict:
    for product in (COFFEE, MUG):
        if product["id"] == product_id:
            return product
    raise svc.NotFound(f"product {product_id} not found")


@pytest.fixture
def transport() -> FakeTransport:
    return (FakeTransport()
            .on("catalog", "get_products_by_sku", by_sku)
            .on("catalog", "get_product", by_id)
            .on("orders", "create_order", lambda customer_id, items, request_key: ORDER)
            .on("cart", "add_item", lambda customer_id, item: CART)
            .on("cart", "update_item", lambda customer_id, product_id, quantity: CART)
            .on("cart", "remove_item", lambda customer_id, product_id: CART)
            .on("inventory", "get_stock", lambda product_id: {"product_id": product_id, "available": 7,
                                                              "reserved": 1})
            .on("inventory", "set_stock", lambda product_id, available: {"product_id": product_id,
                                                                        "available": available,
                                                                        "reserved": 0}))


@pytest.fixture
def app(transport: FakeTransport) -> Flask:
    return create_app(settings_for_tests(), transport=transport)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def auth(app: Flask) -> dict[str, str]:
    return bearer(token_for(app, 5))


def problem(response: Any, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"].endswith("/" + slug)
    return body


def test_order_lines_by_sku_resolve_in_one_catalog_call(client: Any, auth: dict,
                                                        transport: FakeTransport) -> None:
    body = {"items": [{"sku": "COFFEE-1KG", "quantity": 2}, {"product_id": 5, "quantity": 1},
                      {"sku": "MUG-STEEL", "quantity": 1}, {"sku": "COFFEE-1KG", "quantity": 1}]}
    response = client.post("/api/orders", json=body, headers=auth)
    assert response.status_code == 202, response.get_data(as_text=True)
    lookups = transport.calls_to("catalog", "get_products_by_sku")
    assert [call.args for call in lookups] == [(["COFFEE-1KG", "MUG-STEEL"],)]
    assert transport.calls_to("orders", "create_order")[0].kwargs["items"] == [
        {"product_id": 1, "quantity": 2}, {"product_id": 5, "quantity": 1},
        {"product_id": 3, "quantity": 1}, {"product_id": 1, "quantity": 1}]


def test_the_shorthand_takes_a_sku(client: Any, auth: dict, transport: FakeTransport) -> None:
    response = client.post("/api/orders", json={"sku": "MUG-STEEL", "quantity": 2}, headers=auth)
    assert response.status_code == 202
    items = transport.calls_to("orders", "create_order")[0].kwargs["items"]
    assert items == [{"product_id": 3, "quantity": 2}]


@pytest.mark.parametrize("body", [
    {"product_id": 1, "quantity": 2},
    {"items": [{"product_id": 1, "quantity": 2}, {"product_id": 3, "quantity": 1}]},
])
def test_orders_by_id_cost_no_extra_call(client: Any, auth: dict, transport: FakeTransport,
                                         body: dict) -> None:
    assert client.post("/api/orders", json=body, headers=auth).status_code == 202
    assert [(c.service, c.method) for c in transport.calls] == [("orders", "create_order")]


def test_an_unknown_sku_is_refused_like_an_unknown_id(client: Any, auth: dict,
                                                      transport: FakeTransport) -> None:
    body = {"items": [{"sku": "NOPE-1", "quantity": 1}, {"sku": "COFFEE-1KG", "quantity": 1}]}
    answer = problem(client.post("/api/orders", json=body, headers=auth), 422, "validation")
    assert answer["fields"] == {"items": {"NOPE-1": ["no such product"]}}
    assert transport.calls_to("orders", "create_order") == []


@pytest.mark.parametrize("body", [
    {"items": [{"sku": "COFFEE-1KG", "product_id": 1, "quantity": 1}]},
    {"sku": "COFFEE-1KG", "product_id": 1, "quantity": 1},
])
def test_sku_and_product_id_on_one_line_is_a_named_conflict(client: Any, auth: dict, transport: FakeTransport,
                                                            body: dict) -> None:
    answer = problem(client.post("/api/orders", json=body, headers=auth), 422, "validation")
    fields = answer["fields"]["items"]["0"] if "items" in body else answer["fields"]
    assert set(fields) == {"sku", "product_id"}
    assert "not both" in fields["sku"][0]
    assert transport.calls == []


@pytest.mark.parametrize("body", [
    {"items": [{"quantity": 1}]},                        # no product named
    {"sku": "COFFEE-1KG"},                               # no quantity
    {"items": [{"sku": "12345", "quantity": 1}]},        # digits only: that is an id, not a SKU
    {"items": [{"sku": "", "quantity": 1}]},
    {"items": [{"sku": "a" * 65, "quantity": 1}]},
    {"items": [{"sku": "COFFEE-1KG", "quantity": 1}], "sku": "MUG-STEEL", "quantity": 1},
])
def test_bad_sku_bodies_are_422(client: Any, auth: dict, transport: FakeTransport, body: dict) -> None:
    assert problem(client.post("/api/orders", json=body, headers=auth), 422, "validation")["fields"]
    assert transport.calls == []


def test_cart_lines_take_a_sku(client: Any, auth: dict, transport: FakeTransport) -> None:
    added = client.post("/api/cart/items", json={"sku": "COFFEE-1KG", "quantity": 2}, headers=auth)
    assert added.status_code == 200
    assert transport.calls_to("cart", "add_item")[0].args == (5, {"product_id": 1, "quantity": 2})
    assert client.put("/api/cart/items/MUG-STEEL", json={"quantity": 4}, headers=auth).status_code == 200
    assert transport.calls_to("cart", "update_item")[0].args == (5, 3, 4)
    assert client.delete("/api/cart/items/COFFEE-1KG", headers=auth).status_code == 200
    assert transport.calls_to("cart", "remove_item")[0].args == (5, 1)


def test_cart_lines_by_id_cost_no_extra_call(client: Any, auth: dict, transport: FakeTransport) -> None:
    client.post("/api/cart/items", json={"product_id": 1, "quantity": 2}, headers=auth)
    client.put("/api/cart/items/1", json={"quantity": 4}, headers=auth)
    client.delete("/api/cart/items/1", headers=auth)
    assert [c.service for c in transport.calls] == ["cart", "cart", "cart"]


def test_cart_refuses_unknown_skus_and_conflicts(client: Any, auth: dict, transport: FakeTransport) -> None:
    unknown = client.post("/api/cart/items", json={"sku": "NOPE-1", "quantity": 1}, headers=auth)
    problem(unknown, 404, "not-found")
    problem(client.delete("/api/cart/items/NOPE-1", headers=auth), 404, "not-found")
    both = problem(client.post("/api/cart/items", json={"sku": "COFFEE-1KG", "product_id": 1, "quantity": 1},
                               headers=auth), 422, "validation")
    assert set(both["fields"]) == {"sku", "product_id"}
    assert transport.calls_to("cart", "add_item") == [] and transport.calls_to("cart", "remove_item") == []


@pytest.mark.parametrize("ref", ["1", "COFFEE-1KG"])
def test_stock_reads_by_id_or_sku(client: Any, transport: FakeTransport, ref: str) -> None:
    response = client.get(f"/api/inventory/{ref}")
    assert response.status_code == 200
    assert response.get_json() == {"product_id": 1, "sku": "COFFEE-1KG", "available": 7, "reserved": 1}
    assert transport.calls_to("inventory", "get_stock")[0].args == (1,)


def test_an_admin_sets_stock_by_sku(client: Any, app: Flask, transport: FakeTransport) -> None:
    response = client.put("/api/inventory/MUG-STEEL", json={"available": 9},
                          headers=bearer(token_for(app, 1, "admin")))
    assert response.status_code == 200 and response.get_json()["sku"] == "MUG-STEEL"
    assert transport.calls_to("inventory", "set_stock")[0].args == (3, 9)


@pytest.mark.parametrize("ref", ["NOPE-1", "404", "0", "99999999999"])
def test_stock_of_an_unknown_id_or_sku_is_404(client: Any, ref: str) -> None:
    problem(client.get(f"/api/inventory/{ref}"), 404, "not-found")


def test_the_document_describes_both_forms(client: Any) -> None:
    document = client.get("/openapi.json").get_json()
    parameter = document["paths"]["/api/inventory/{product_id_or_sku}"]["parameters"][0]
    assert parameter["schema"]["type"] == "string" and "SKU" in parameter["schema"]["description"]
    line = document["components"]["schemas"]["OrderItemRequest"]["properties"]
    assert {"product_id", "sku", "quantity"} <= set(line)
    assert "sku" in document["paths"]["/api/orders"]["post"]["description"]
