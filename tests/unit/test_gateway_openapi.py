"""The OpenAPI document and the Flask routes must agree, in both directions."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from gateway import create_app
from gateway.openapi import documented_operations, routed_operations
from gateway.testing import FakeTransport, settings_for_tests

ORDER = {"id": 11, "customer_id": 5, "status": "PENDING", "reason": None, "currency": "USD",
         "total_cents": 500, "cancellation_requested": False, "items": [], "history": [],
         "created_at": None, "updated_at": None}


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app(settings_for_tests(), transport=FakeTransport())


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_every_route_is_documented(app: Flask, document: dict[str, Any]) -> None:
    missing = routed_operations(app) - documented_operations(document)
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"


def test_every_documented_operation_is_routed(app: Flask, document: dict[str, Any]) -> None:
    ghosts = documented_operations(document) - routed_operations(app)
    assert not ghosts, f"/openapi.json documents operations no route serves: {sorted(ghosts)}"


def test_the_issue_contract_is_there(document: dict[str, Any]) -> None:
    expected = {
        ("/auth/register", "POST"), ("/auth/login", "POST"), ("/auth/me", "GET"),
        ("/api/products", "GET"), ("/api/products/{product_id}", "GET"), ("/api/products", "POST"),
        ("/api/products/{product_id}", "PUT"), ("/api/products/{product_id}", "DELETE"),
        ("/api/inventory/{product_id_or_sku}", "GET"), ("/api/inventory/{product_id_or_sku}", "PUT"),
        ("/api/cart", "GET"), ("/api/cart/items", "POST"), ("/api/cart/items/{product_id_or_sku}", "PUT"),
        ("/api/cart/items/{product_id_or_sku}", "DELETE"), ("/api/cart/checkout", "POST"),
        ("/api/orders", "POST"), ("/api/orders", "GET"), ("/api/orders/{order_id}", "GET"),
        ("/api/orders/{order_id}/cancel", "POST"), ("/api/payments/{order_id}", "GET"),
        ("/api/shipments/{order_id}", "GET"), ("/api/notifications", "GET"),
        ("/health", "GET"), ("/ready", "GET"), ("/metrics", "GET"), ("/openapi.json", "GET"),
        ("/docs", "GET"),
    }
    assert expected <= documented_operations(document)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def test_operations_document_success_and_errors(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            statuses = set(operation["responses"])
            assert any(s.startswith("2") for s in statuses), (path, method)
            assert "500" in statuses, (path, method)
            if operation.get("security"):
                assert "401" in statuses, (path, method)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= statuses, (path, method)
            if path.startswith(("/api", "/auth")):
                assert "429" in statuses and "503" in statuses, (path, method)


def test_schemas_come_from_the_marshmallow_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    register = schemas["RegisterRequest"]
    assert set(register["required"]) == {"name", "email", "password"}
    assert "role" not in register["properties"]
    assert schemas["ProblemResponse"]["properties"]["fields"]["type"] == "object"
    orders = document["paths"]["/api/orders"]["post"]
    assert orders["responses"]["202"]["headers"]["Location"]["required"] is True
    assert any(p["name"] == "Idempotency-Key" for p in orders["parameters"])


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(documented_operations(document))


def test_an_undocumented_route_is_caught() -> None:
    app = create_app(settings_for_tests(), transport=FakeTransport())

    @app.get("/api/secret")
    def secret() -> str:
        return "hidden"

    document = app.test_client().get("/openapi.json").get_json()
    assert routed_operations(app) - documented_operations(document) == {("/api/secret", "GET")}


def test_orders_accept_items_and_the_shorthand() -> None:
    from gateway.testing import bearer, token_for

    transport = FakeTransport().on("orders", "create_order", lambda customer_id, items, request_key: ORDER)
    app = create_app(settings_for_tests(), transport=transport)
    client = app.test_client()
    auth = bearer(token_for(app, 5))
    short = client.post("/api/orders", json={"product_id": 1, "quantity": 2}, headers=auth)
    assert short.status_code == 202
    assert short.headers["Location"] == "/api/orders/11"
    assert short.get_json()["order_id"] == 11 and short.get_json()["status"] == "PENDING"
    full = client.post("/api/orders", json={"items": [{"product_id": 1, "quantity": 2},
                                                      {"product_id": 3, "quantity": 1}]}, headers=auth)
    assert full.status_code == 202
    calls = transport.calls_to("orders", "create_order")
    assert calls[0].kwargs == {"customer_id": 5, "items": [{"product_id": 1, "quantity": 2}],
                               "request_key": None}
    assert calls[1].kwargs["items"] == [{"product_id": 1, "quantity": 2}, {"product_id": 3, "quantity": 1}]
    for bad in ({}, {"product_id": 1}, {"items": []}, {"items": [{"product_id": 1}]},
                {"items": [{"product_id": 1, "quantity": 1}], "product_id": 1},
                {"product_id": "1", "quantity": 1}):
        answer = client.post("/api/orders", json=bad, headers=auth)
        assert answer.status_code == 422, bad
        assert answer.get_json()["fields"], bad
    assert len(transport.calls_to("orders", "create_order")) == 2
