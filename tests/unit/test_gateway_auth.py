"""JWT issuing and verification, startup refusal without a real secret, RBAC and ownership."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask

from gateway import create_app
from gateway.config import EXAMPLE_SECRET, ConfigurationError, Settings
from gateway.testing import TEST_SECRET, FakeTransport, bearer, settings_for_tests, token_for
from services.common import errors as svc

CUSTOMER = {"id": 5, "name": "John Doe", "email": "john@example.com", "role": "customer",
            "created_at": "2024-01-01T00:00:00+00:00"}
ORDER = {"id": 11, "customer_id": 5, "status": "PENDING", "reason": None, "currency": "USD",
         "total_cents": 500, "cancellation_requested": False, "items": [], "history": [],
         "created_at": None, "updated_at": None}


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def app(transport: FakeTransport) -> Flask:
    return create_app(settings_for_tests(), transport=transport)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "5", "role": "customer", "iss": "ecommerce-gateway", "aud": "ecommerce-api",
              "iat": now, "exp": now + 600}
    claims.update(changes)
    return claims


# ------------------------------------------------------------- registration and login

def test_register_drops_a_requested_role_and_says_the_granted_one(client: Any,
                                                                  transport: FakeTransport) -> None:
    transport.on("customers", "register", lambda data: {**CUSTOMER, "name": data["name"]})
    response = client.post("/auth/register", json={"name": "John Doe", "email": "john@example.com",
                                                   "password": "password123", "role": "admin"})
    assert response.status_code == 201
    assert response.get_json()["role"] == "customer"
    sent = transport.calls_to("customers", "register")[0].args[0]
    assert sent == {"name": "John Doe", "email": "john@example.com", "password": "password123"}


def test_login_issues_a_token_the_api_accepts(client: Any, transport: FakeTransport) -> None:
    transport.on("customers", "authenticate", CUSTOMER).on("customers", "get_customer", CUSTOMER)
    response = client.post("/auth/login", json={"email": "john@example.com", "password": "password123"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["user"]["role"] == "customer"
    claims = jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"], audience="ecommerce-api")
    assert claims["sub"] == "5" and claims["role"] == "customer"
    assert {"exp", "iat", "iss", "aud"} <= set(claims)
    me = client.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.get_json()["email"] == "john@example.com"


def test_wrong_credentials_are_401(client: Any, transport: FakeTransport) -> None:
    transport.on("customers", "authenticate", svc.Unauthorized("invalid email or password"))
    response = client.post("/auth/login", json={"email": "john@example.com", "password": "nope"})
    assert response.status_code == 401
    assert response.get_json()["type"].endswith("/invalid-credentials")


# ------------------------------------------------------------- token verification

def test_no_token_is_401_with_a_challenge(client: Any) -> None:
    response = client.get("/api/orders")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["type"].endswith("/unauthorized")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_malformed_authorization_headers_are_401(client: Any, header: str) -> None:
    assert client.get("/api/orders", headers={"Authorization": header}).status_code == 401


def test_a_tampered_token_is_rejected(client: Any, app: Flask) -> None:
    header, _payload, signature = token_for(app, 5).split(".")
    forged_payload = _segment({**_claims(), "role": "admin"})
    response = client.get("/api/orders", headers=bearer(f"{header}.{forged_payload}.{signature}"))
    assert response.status_code == 401
    assert response.get_json()["type"].endswith("/invalid-token")


def test_a_token_signed_with_another_secret_is_rejected(client: Any) -> None:
    token = jwt.encode(_claims(), "another-secret-that-is-long-enough-0123456789", algorithm="HS256")
    assert client.get("/api/orders", headers=bearer(token)).status_code == 401


def test_an_expired_token_is_rejected(client: Any) -> None:
    token = jwt.encode(_claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600), TEST_SECRET,
                       algorithm="HS256")
    response = client.get("/api/orders", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.get_json()["detail"]


def test_alg_none_is_rejected(client: Any) -> None:
    token = f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(_claims(role='admin'))}."
    assert client.get("/api/orders", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("changes", [{"iss": "someone-else"}, {"aud": "another-api"}, {"role": "superuser"},
                                     {"sub": "not-a-number"}])
def test_wrong_claims_are_rejected(client: Any, changes: dict[str, Any]) -> None:
    token = jwt.encode(_claims(**changes), TEST_SECRET, algorithm="HS256")
    assert client.get("/api/orders", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub"])
def test_required_claims_must_be_present(client: Any, missing: str) -> None:
    claims = _claims()
    del claims[missing]
    token = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
    assert client.get("/api/orders", headers=bearer(token)).status_code == 401


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_rs256_tokens_work_and_hs256_confusion_is_rejected(transport: FakeTransport) -> None:
    private, public = _rsa_pair()
    app = create_app(settings_for_tests(jwt_algorithm="RS256", jwt_private_key=private, jwt_public_key=public,
                                        jwt_secret=None), transport=transport)
    client = app.test_client()
    transport.on("orders", "list_orders", {"items": [], "page": 1, "per_page": 20, "total": 0})
    token = token_for(app, 5)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert client.get("/api/orders", headers=bearer(token)).status_code == 200
    # algorithm confusion: an HS256 token "signed" with the public key as the HMAC secret
    forged = jwt.api_jws.PyJWS(algorithms=None)._algorithms["HS256"]
    header = _segment({"alg": "HS256", "typ": "JWT"})
    payload = _segment(_claims(role="admin"))
    signature = base64.urlsafe_b64encode(
        forged.sign(f"{header}.{payload}".encode(), public.encode())).rstrip(b"=").decode()
    assert client.get("/api/orders", headers=bearer(f"{header}.{payload}.{signature}")).status_code == 401


def test_rs256_keys_can_be_pem_files(tmp_path: Any) -> None:
    private, public = _rsa_pair()
    (tmp_path / "private.pem").write_text(private)
    (tmp_path / "public.pem").write_text(public)
    settings = Settings.from_env({"AMQP_URI": "memory://", "JWT_ALGORITHM": "RS256",
                                  "JWT_PRIVATE_KEY": str(tmp_path / "private.pem"),
                                  "JWT_PUBLIC_KEY": str(tmp_path / "public.pem")})
    assert settings.signing_key == private and settings.verifying_key == public


# ------------------------------------------------------------- startup refusal

@pytest.mark.parametrize("secret", [None, "", EXAMPLE_SECRET, "short"])
def test_refuses_to_start_without_a_real_secret(secret: str | None) -> None:
    env = {"AMQP_URI": "memory://", "GATEWAY_ENV": "production"}
    if secret is not None:
        env["JWT_SECRET"] = secret
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)


def test_the_secret_can_come_from_a_file(tmp_path: Any) -> None:
    (tmp_path / "jwt_secret").write_text("s" * 48 + "\n")
    settings = Settings.from_env({"AMQP_URI": "memory://", "JWT_SECRET_FILE": str(tmp_path / "jwt_secret")})
    assert settings.jwt_secret == "s" * 48
    with pytest.raises(ConfigurationError):
        Settings.from_env({"AMQP_URI": "memory://", "JWT_SECRET_FILE": str(tmp_path / "missing")})


def test_development_mode_starts_without_a_secret() -> None:
    settings = Settings.from_env({"AMQP_URI": "memory://", "GATEWAY_ENV": "development"})
    assert settings.jwt_secret


def test_rs256_needs_both_keys() -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env({"AMQP_URI": "memory://", "JWT_ALGORITHM": "RS256", "JWT_SECRET": "x" * 40})


def test_create_app_refuses_the_example_secret() -> None:
    with pytest.raises(ConfigurationError):
        create_app(settings_for_tests(jwt_secret=EXAMPLE_SECRET), transport=FakeTransport())


# ------------------------------------------------------------- RBAC and ownership

@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/api/products",
     {"sku": "A-1", "name": "A", "category": "c", "price_cents": 1, "currency": "USD"}),
    ("put", "/api/products/1", {"name": "B"}),
    ("delete", "/api/products/1", None),
    ("put", "/api/inventory/1", {"available": 5}),
    ("post", "/api/shipments/1/advance", {"status": "SHIPPED"}),
])
def test_catalog_and_inventory_writes_are_admin_only(client: Any, app: Flask, transport: FakeTransport,
                                                     method: str, path: str, body: Any) -> None:
    response = getattr(client, method)(path, json=body, headers=bearer(token_for(app, 5)))
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("/forbidden")
    assert transport.calls == []


def test_an_admin_may_write_the_catalog(client: Any, app: Flask, transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", {"id": 1, "sku": "A-1"}).on(
        "inventory", "set_stock", {"product_id": 1, "available": 5, "reserved": 0})
    admin = bearer(token_for(app, 1, "admin"))
    response = client.put("/api/inventory/1", json={"available": 5}, headers=admin)
    assert response.status_code == 200
    assert response.get_json() == {"product_id": 1, "available": 5, "reserved": 0, "sku": "A-1"}
    assert transport.calls_to("inventory", "set_stock")[0].args == (1, 5)


def test_customers_read_only_their_own_orders(client: Any, app: Flask, transport: FakeTransport) -> None:
    transport.on("orders", "get_order", svc.NotFound("order 11 not found"))
    response = client.get("/api/orders/11", headers=bearer(token_for(app, 6)))
    assert response.status_code == 404
    assert transport.calls_to("orders", "get_order")[0].kwargs == {"customer_id": 6}


def test_admins_read_any_order(client: Any, app: Flask, transport: FakeTransport) -> None:
    transport.on("orders", "get_order", ORDER)
    assert client.get("/api/orders/11", headers=bearer(token_for(app, 1, "admin"))).status_code == 200
    assert transport.calls_to("orders", "get_order")[0].kwargs == {"customer_id": None}


@pytest.mark.parametrize(("path", "service", "method"), [
    ("/api/payments/11", "payments", "get_payment"),
    ("/api/shipments/11", "shipping", "get_shipment"),
])
def test_payments_and_shipments_are_scoped_to_the_customer(client: Any, app: Flask, transport: FakeTransport,
                                                           path: str, service: str, method: str) -> None:
    transport.on(service, method, svc.NotFound("not found"))
    assert client.get(path, headers=bearer(token_for(app, 6))).status_code == 404
    assert transport.calls_to(service, method)[0].kwargs == {"customer_id": 6}


def test_listing_orders_is_scoped_and_the_all_orders_view_is_admin_only(client: Any, app: Flask,
                                                                        transport: FakeTransport) -> None:
    page = {"items": [], "page": 1, "per_page": 20, "total": 0}
    transport.on("orders", "list_orders", page)
    assert client.get("/api/orders", headers=bearer(token_for(app, 6))).status_code == 200
    assert transport.calls_to("orders", "list_orders")[-1].args[0]["customer_id"] == 6
    other = client.get("/api/orders?customer_id=7", headers=bearer(token_for(app, 6)))
    assert other.status_code == 403
    admin = client.get("/api/orders?customer_id=7&status=PENDING", headers=bearer(token_for(app, 1, "admin")))
    assert admin.status_code == 200
    assert transport.calls_to("orders", "list_orders")[-1].args[0] == {
        "customer_id": 7, "status": "PENDING", "page": 1, "per_page": 20}
    everything = client.get("/api/orders", headers=bearer(token_for(app, 1, "admin")))
    assert everything.status_code == 200
    assert "customer_id" not in transport.calls_to("orders", "list_orders")[-1].args[0]


def test_notifications_are_the_callers(client: Any, app: Flask, transport: FakeTransport) -> None:
    transport.on("notifications", "list_notifications", {"items": [], "page": 2, "per_page": 5, "total": 0})
    response = client.get("/api/notifications?page=2&per_page=5", headers=bearer(token_for(app, 6)))
    assert response.status_code == 200
    assert transport.calls_to("notifications", "list_notifications")[0].args == (6, 2, 5)
