"""The gateway's error handling, correlation ids and service error mapping (RPC layer faked)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from nameko.exceptions import MethodNotFound

from gateway import create_app
from gateway.errors import PROBLEM_MEDIA_TYPE, TYPE_BASE
from gateway.testing import FakeTransport, bearer, settings_for_tests, token_for
from services.common import errors as svc

PRODUCT = {"id": 1, "sku": "SKU-1", "name": "Mug", "description": "", "category": "kitchen",
           "price_cents": 500, "currency": "USD", "active": True, "created_at": None, "updated_at": None}


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def app(transport: FakeTransport) -> Flask:
    return create_app(settings_for_tests(max_content_length=1024), transport=transport)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    body = response.get_json(force=True)
    assert body["type"] == TYPE_BASE + slug
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_unknown_route_is_a_json_404(client: Any) -> None:
    assert_problem(client.get("/no/such/thing"), 404, "not-found")


def test_wrong_method_is_405_with_allow(client: Any) -> None:
    response = client.patch("/api/products")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


def test_body_over_the_limit_is_413(client: Any, app: Flask) -> None:
    token = token_for(app, 1, "admin")
    response = client.post("/api/products", data="x" * 5000, content_type="application/json",
                           headers=bearer(token))
    assert_problem(response, 413, "payload-too-large")


def test_malformed_json_is_400(client: Any, app: Flask) -> None:
    response = client.post("/api/orders", data='{"product_id": 1,', content_type="application/json",
                           headers=bearer(token_for(app, 1)))
    assert_problem(response, 400, "malformed-request")


def test_non_json_body_is_415(client: Any, app: Flask) -> None:
    response = client.post("/api/orders", data="product_id=1",
                           content_type="application/x-www-form-urlencoded",
                           headers=bearer(token_for(app, 1)))
    assert_problem(response, 415, "unsupported-media-type")


def test_validation_lists_the_fields(client: Any) -> None:
    response = client.post("/auth/register", json={"name": "", "email": "nope", "password": "short"})
    body = assert_problem(response, 422, "validation")
    assert set(body["fields"]) == {"name", "email", "password"}


def test_a_json_array_body_is_a_validation_error(client: Any) -> None:
    body = assert_problem(client.post("/auth/login", json=[1, 2]), 422, "validation")
    assert "_schema" in body["fields"]


def test_service_validation_errors_keep_their_fields(client: Any, transport: FakeTransport) -> None:
    transport.on("customers", "register",
                 svc.ValidationFailed("invalid input", {"fields": {"email": ["taken?"]}}))
    body = {"name": "A", "email": "a@example.com", "password": "longenough"}
    response = client.post("/auth/register", json=body)
    assert assert_problem(response, 422, "validation")["fields"] == {"email": ["taken?"]}


@pytest.mark.parametrize(("error", "status", "slug"), [
    (svc.NotFound("product 9 not found"), 404, "not-found"),
    (svc.Conflict("sku exists"), 409, "conflict"),
    (svc.OutOfStock("insufficient stock", {"product_ids": [1]}), 409, "out-of-stock"),
    (svc.PaymentDeclined("declined"), 409, "payment-declined"),
    (svc.Forbidden("no"), 403, "forbidden"),
    (svc.Unauthorized("bad"), 401, "invalid-credentials"),
    (svc.ServiceUnavailable("timeout"), 503, "service-unavailable"),
    (svc.InternalError("internal error (reference abc)"), 500, "internal"),
    (MethodNotFound("get_product"), 500, "internal"),
    (RuntimeError("secret internals /etc/passwd"), 500, "internal"),
])
def test_service_errors_map_to_statuses(client: Any, transport: FakeTransport, error: Exception, status: int,
                                        slug: str) -> None:
    transport.on("catalog", "get_product", error)
    body = assert_problem(client.get("/api/products/9"), status, slug)
    assert "Traceback" not in str(body) and "/etc/passwd" not in str(body)


def test_unavailable_answers_carry_retry_after(client: Any, transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", svc.ServiceUnavailable("timeout"))
    response = client.get("/api/products/1")
    assert int(response.headers["Retry-After"]) >= 1


def test_an_unexpected_gateway_error_is_a_500_without_internals(client: Any, app: Flask,
                                                                 transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", lambda _id: 42)  # the view trips over a non-dict answer
    response = client.get("/api/products/1")
    body = assert_problem(response, 500, "internal")
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["reference"]


def test_request_id_is_generated_and_echoed(client: Any, transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", PRODUCT)
    response = client.get("/api/products/1")
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) >= 16
    assert transport.calls[-1].correlation_id == request_id


def test_request_id_from_the_client_travels_to_the_service(client: Any, transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", PRODUCT)
    response = client.get("/api/products/1", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["X-Request-ID"] == "trace-abc-123"
    assert transport.calls[-1].correlation_id == "trace-abc-123"


def test_an_unsafe_request_id_is_replaced(client: Any, transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", PRODUCT)
    response = client.get("/api/products/1", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["X-Request-ID"] != "bad id\twith spaces"


def test_health_and_ready(client: Any, transport: FakeTransport) -> None:
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ready"
    # analytics is optional: the platform is ready without it, and says so
    transport.consumer_counts = {"analytics": 0}
    without_analytics = client.get("/ready")
    assert without_analytics.status_code == 200
    assert without_analytics.get_json()["services"]["analytics"]["consumers"] == 0
    transport.consumer_counts = {"payments": 0}
    not_ready = client.get("/ready")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["services"]["payments"]["consumers"] == 0


def test_metrics_export_breaker_states(client: Any) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'gateway_circuit_breaker_state{service="catalog"} 0.0' in text


def test_docs_are_served_offline(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and b"swagger-ui-bundle.js" in page.data
    asset = client.get("/docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    asset.close()
    assert_problem(client.get("/docs/../../etc/passwd"), 404, "not-found")


def test_inactive_products_are_hidden_from_customers(client: Any, app: Flask,
                                                     transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", {**PRODUCT, "active": False})
    assert_problem(client.get("/api/products/1"), 404, "not-found")
    admin = client.get("/api/products/1", headers=bearer(token_for(app, 7, "admin")))
    assert admin.status_code == 200


def test_kpis_are_for_admins_and_pass_the_limit(client: Any, app: Flask, transport: FakeTransport) -> None:
    served = {"windows": [], "topic": "analytics.kpis", "reachable": True, "last_read_at": None}
    transport.on("analytics", "get_kpis", lambda limit: {**served, "limit_seen": limit})
    assert_problem(client.get("/api/analytics/kpis"), 401, "unauthorized")
    customer = bearer(token_for(app, 7))
    assert_problem(client.get("/api/analytics/kpis", headers=customer), 403, "forbidden")
    assert transport.calls_to("analytics", "get_kpis") == []
    admin = bearer(token_for(app, 1, "admin"))
    assert client.get("/api/analytics/kpis", headers=admin).get_json()["limit_seen"] == 10
    assert client.get("/api/analytics/kpis?limit=3", headers=admin).get_json()["limit_seen"] == 3
    for bad in ("0", "101", "x"):
        assert_problem(client.get(f"/api/analytics/kpis?limit={bad}", headers=admin), 422, "validation")
    assert_problem(client.get("/api/analytics/kpis?window=1", headers=admin), 422, "validation")
    transport.on("analytics", "get_kpis", svc.ServiceUnavailable("the KPI topic cannot be read yet"))
    assert_problem(client.get("/api/analytics/kpis", headers=admin), 503, "service-unavailable")


def test_stalled_orders_are_listed_and_resumed_by_admins_only(client: Any, app: Flask,
                                                              transport: FakeTransport) -> None:
    stalled = {"id": 5, "customer_id": 7, "status": "PENDING", "attempts": 10,
               "stalled_reason": "CHARGE_PAYMENT failed 10 times; last: payments.charge timed out",
               "updated_at": "2026-12-02T05:00:00+00:00"}
    transport.on("orders", "list_stalled", [stalled])
    transport.on("orders", "resume_stalled", lambda order_id: {"id": order_id, "customer_id": 7,
                                                                "status": "PENDING", "stalled_reason": None})
    customer = bearer(token_for(app, 7))
    assert_problem(client.get("/api/orders/stalled", headers=customer), 403, "forbidden")
    assert_problem(client.post("/api/orders/5/resume", headers=customer), 403, "forbidden")
    assert transport.calls_to("orders", "resume_stalled") == []
    admin = bearer(token_for(app, 1, "admin"))
    assert client.get("/api/orders/stalled", headers=admin).get_json() == {"items": [stalled]}
    resumed = client.post("/api/orders/5/resume", headers=admin)
    assert resumed.status_code == 202 and resumed.get_json()["stalled_reason"] is None
    transport.on("orders", "resume_stalled", svc.Conflict("order 6 is not stalled"))
    assert_problem(client.post("/api/orders/6/resume", headers=admin), 409, "conflict")
