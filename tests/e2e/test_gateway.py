"""End-to-end through the real gateway (gunicorn) and the real services.

The gateway runs in the stack that scripts/test.sh started; its URL is
GATEWAY_URL (default http://localhost:8080). Tokens that must be forged with
the real key (an expired one) need JWT_SECRET in the environment, as test.sh
exports it for the stack.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
import requests

from tests.e2e.conftest import STACK_DIR, query
from tests.helpers import wait_for

GATEWAY = os.environ.get("GATEWAY_URL", "http://localhost:8080").rstrip("/")
PROBLEM = "application/problem+json"
FINAL = {"DELIVERED", "REJECTED", "CANCELLED"}
SUCCEEDED = {"CONFIRMED", "SHIPPED", "DELIVERED"}


def call(method: str, path: str, token: str | None = None, retry_429: bool = True, **kwargs: Any) -> Any:
    """One HTTP call to the gateway; waits out a 429 (the suite shares the stack's limits)."""
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for _ in range(10):
        response = requests.request(method, GATEWAY + path, headers=headers, timeout=30, **kwargs)
        if response.status_code != 429 or not retry_429:
            return response
        time.sleep(int(response.headers.get("Retry-After", "1")))
    return response


def login(email: str, password: str) -> str:
    response = call("POST", "/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def admin_password() -> str:
    if os.environ.get("ADMIN_PASSWORD"):
        return os.environ["ADMIN_PASSWORD"]
    return (STACK_DIR / "secrets" / "admin_password").read_text().strip()


def jwt_secret() -> str | None:
    """The stack's HS256 secret: JWT_SECRET, or the one scripts/platform.sh generated."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    generated = STACK_DIR / "secrets" / "jwt_secret"
    return generated.read_text().strip() if generated.exists() else None


@pytest.fixture(scope="session", autouse=True)
def gateway_up() -> None:
    def healthy() -> bool:
        try:
            return requests.get(f"{GATEWAY}/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=60,
             what=f"the gateway at {GATEWAY} to be ready (GATEWAY_URL; is JWT_SECRET exported for the stack?"
                  f" see {STACK_DIR}/log/gateway.log)")


@pytest.fixture(scope="session")
def admin_token() -> str:
    return login(os.environ.get("ADMIN_EMAIL", "admin@example.com"), admin_password())


@pytest.fixture
def shopper(rpc: Any) -> Callable[[], dict[str, Any]]:
    """A new customer (registered through the service) with a gateway token."""

    def make() -> dict[str, Any]:
        email = f"gw-{uuid.uuid4().hex[:12]}@example.com"
        customer = rpc.customers.register({"name": "Gateway Shopper", "email": email,
                                           "password": "correct-horse-9"})
        return {**customer, "token": login(email, "correct-horse-9")}

    return make


def wait_for_order(token: str, order_id: int, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        order = call("GET", f"/api/orders/{order_id}", token).json()
        return order if order["status"] in statuses else None

    return wait_for(reached, timeout=timeout, interval=0.3, what=f"order {order_id} to reach {statuses}")


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == f"https://errors.ecommerce.example/{slug}"
    assert "Traceback" not in response.text
    return body


# ---------------------------------------------------------------- the seed documents' curl flow

def test_the_seed_curl_commands_work_verbatim(rpc: Any) -> None:
    # the README's commands need curl: without it they fail for users too
    assert shutil.which("curl"), "curl is not installed (Debian: apt-get install curl)"
    rpc.inventory.set_stock(1, 1000)  # the seeded product the seed documents order
    register = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "-X", "POST", f"{GATEWAY}/auth/register", "-H",
         "Content-Type: application/json", "-d",
         '{"name": "John Doe", "email": "john@example.com", "password": "password123", "role": "admin"}'],
        capture_output=True, text=True, check=True).stdout
    body, status = register.rsplit("\n", 1)
    if status == "409":  # a stack that is not fresh registered John before
        assert json.loads(body)["type"].endswith("/conflict")
    else:
        assert status == "201", body
        assert json.loads(body)["role"] == "customer"

    login_out = subprocess.run(
        ["curl", "-s", "-X", "POST", f"{GATEWAY}/auth/login", "-H", "Content-Type: application/json", "-d",
         '{"email": "john@example.com", "password": "password123"}'],
        capture_output=True, text=True, check=True).stdout
    answer = json.loads(login_out)
    assert answer["user"]["role"] == "customer"
    token = answer["access_token"]

    order_out = subprocess.run(
        ["curl", "-s", "-D", "-", "-X", "POST", f"{GATEWAY}/api/orders",
         "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json",
         "-d", '{"product_id": 1, "quantity": 1}'],
        capture_output=True, text=True, check=True).stdout
    head, _, order_body = order_out.partition("\n\n")  # text mode turned CRLF into LF
    assert head.startswith("HTTP/1.1 202")
    order = json.loads(order_body)
    assert order["order_id"] == order["id"] and order["status"] == "PENDING"
    assert f"Location: /api/orders/{order['id']}" in head
    assert wait_for_order(token, order["id"], SUCCEEDED)["status"] in SUCCEEDED


def test_register_login_browse_order_follow_and_cancel(new_product: Any) -> None:
    email = f"walk-{uuid.uuid4().hex[:10]}@example.com"
    registered = call("POST", "/auth/register",
                      json={"name": "Walker", "email": email, "password": "password123", "role": "admin"})
    assert registered.status_code == 201 and registered.json()["role"] == "customer"
    token = login(email, "password123")
    assert call("GET", "/auth/me", token).json()["email"] == email

    product = new_product(stock=5)
    page = call("GET", "/api/products", params={"q": "E2E item", "per_page": 100}).json()
    assert page["total"] >= 1 and all(p["active"] for p in page["items"])
    assert call("GET", f"/api/products/{product['id']}").json()["sku"] == product["sku"]
    assert call("GET", f"/api/inventory/{product['id']}").json()["available"] == 5

    items = [{"product_id": product["id"], "quantity": 2}]
    placed = call("POST", "/api/orders", token, json={"items": items})
    assert placed.status_code == 202
    order_id = placed.json()["order_id"]
    assert placed.headers["Location"] == f"/api/orders/{order_id}"
    wait_for_order(token, order_id, SUCCEEDED | FINAL)
    listed = call("GET", "/api/orders", token).json()
    assert [o["id"] for o in listed["items"]] == [order_id]

    # a second order, cancelled before it ships (or refused with 409 if the carrier was faster)
    second = call("POST", "/api/orders", token, json={"product_id": product["id"], "quantity": 1}).json()
    cancelled = call("POST", f"/api/orders/{second['id']}/cancel", token, json={"reason": "changed my mind"})
    if cancelled.status_code == 202:
        assert wait_for_order(token, second["id"], FINAL)["status"] == "CANCELLED"
    else:
        assert_problem(cancelled, 409, "conflict")
    notifications = call("GET", "/api/notifications", token).json()
    assert notifications["total"] >= 1


def test_cart_checkout_is_idempotent(shopper: Any, new_product: Any) -> None:
    me = shopper()
    product = new_product(stock=20)
    line = {"product_id": product["id"], "quantity": 2}
    added = call("POST", "/api/cart/items", me["token"], json=line)
    assert added.status_code == 200 and added.json()["items"] == [line]
    updated = call("PUT", f"/api/cart/items/{product['id']}", me["token"], json={"quantity": 3})
    assert updated.json()["items"][0]["quantity"] == 3
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = call("POST", "/api/cart/checkout", me["token"], headers=key)
    again = call("POST", "/api/cart/checkout", me["token"], headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert call("GET", "/api/orders", me["token"]).json()["total"] == 1
    assert call("GET", "/api/cart", me["token"]).json()["items"] == []
    assert_problem(call("POST", "/api/cart/checkout", me["token"]), 409, "conflict")  # empty cart


# ---------------------------------------------------------------- products named by SKU (seed 001)

def test_the_seed_sku_order_and_stock_commands(shopper: Any, new_product: Any) -> None:
    me = shopper()
    product = new_product(stock=10)
    sku = product["sku"]
    # seed 001's body as it is: its "customerId" is ignored, the order is the token's customer's
    placed = call("POST", "/api/orders", me["token"],
                  json={"customerId": "cust-123", "items": [{"sku": sku, "quantity": 2}]})
    assert placed.status_code == 202, placed.text
    order = placed.json()
    assert order["customer_id"] == me["id"]
    assert [(line["product_id"], line["sku"], line["quantity"]) for line in order["items"]] == [
        (product["id"], sku, 2)]
    assert wait_for_order(me["token"], order["id"], SUCCEEDED)["status"] in SUCCEEDED

    stock = subprocess.run(["curl", "-s", f"{GATEWAY}/api/inventory/{sku}"],
                           capture_output=True, text=True, check=True).stdout
    assert json.loads(stock) == {"product_id": product["id"], "sku": sku, "available": 8, "reserved": 0}
    assert call("GET", f"/api/inventory/{product['id']}").json()["sku"] == sku  # the id form still works

    shorthand = call("POST", "/api/orders", me["token"], json={"sku": sku, "quantity": 1})
    assert shorthand.status_code == 202 and shorthand.json()["items"][0]["product_id"] == product["id"]


def test_sku_mistakes_are_problems(shopper: Any, new_product: Any) -> None:
    me = shopper()
    product = new_product(stock=10)
    unknown = call("POST", "/api/orders", me["token"],
                   json={"items": [{"sku": "NO-SUCH-SKU", "quantity": 1}]})
    fields = assert_problem(unknown, 422, "validation")["fields"]
    assert fields == {"items": {"NO-SUCH-SKU": ["no such product"]}}
    missing_id = {"items": [{"product_id": 2**31 - 1, "quantity": 1}]}
    unknown_id = call("POST", "/api/orders", me["token"], json=missing_id)
    assert assert_problem(unknown_id, 422, "validation")["fields"]["items"]  # the same answer for an id
    both = call("POST", "/api/orders", me["token"],
                json={"items": [{"sku": product["sku"], "product_id": product["id"], "quantity": 1}]})
    conflict = assert_problem(both, 422, "validation")["fields"]["items"]["0"]
    assert set(conflict) == {"sku", "product_id"}
    assert_problem(call("GET", "/api/inventory/NO-SUCH-SKU"), 404, "not-found")
    assert_problem(call("POST", "/api/cart/items", me["token"], json={"sku": "NO-SUCH-SKU", "quantity": 1}),
                   404, "not-found")
    assert call("GET", "/api/orders", me["token"]).json()["total"] == 0


def test_cart_lines_by_sku(shopper: Any, new_product: Any) -> None:
    me = shopper()
    product = new_product(stock=10)
    sku = product["sku"]
    added = call("POST", "/api/cart/items", me["token"], json={"sku": sku, "quantity": 2})
    assert added.status_code == 200
    assert added.json()["items"] == [{"product_id": product["id"], "quantity": 2}]
    updated = call("PUT", f"/api/cart/items/{sku}", me["token"], json={"quantity": 3})
    assert updated.json()["items"] == [{"product_id": product["id"], "quantity": 3}]
    assert call("DELETE", f"/api/cart/items/{sku}", me["token"]).json()["items"] == []


# ---------------------------------------------------------------- RBAC and ownership

def test_catalog_and_inventory_writes_are_admin_only(shopper: Any, admin_token: str) -> None:
    me = shopper()
    new = {"sku": f"GW-{uuid.uuid4().hex[:10]}", "name": "Gadget", "category": "e2e", "price_cents": 700,
           "currency": "USD"}
    assert_problem(call("POST", "/api/products", me["token"], json=new), 403, "forbidden")
    created = call("POST", "/api/products", admin_token, json=new)
    product_id = created.json()["id"]
    assert created.status_code == 201 and created.headers["Location"] == f"/api/products/{product_id}"
    stock, rename = f"/api/inventory/{product_id}", f"/api/products/{product_id}"
    assert_problem(call("PUT", stock, me["token"], json={"available": 9}), 403, "forbidden")
    assert call("PUT", stock, admin_token, json={"available": 9}).json()["available"] == 9
    assert_problem(call("PUT", rename, me["token"], json={"name": "x"}), 403, "forbidden")
    assert call("PUT", rename, admin_token, json={"name": "Gizmo"}).json()["name"] == "Gizmo"
    assert_problem(call("DELETE", f"/api/products/{product_id}", me["token"]), 403, "forbidden")
    assert call("DELETE", f"/api/products/{product_id}", admin_token).json()["active"] is False
    assert_problem(call("GET", f"/api/products/{product_id}"), 404, "not-found")  # hidden from shoppers
    assert_problem(call("POST", "/api/products", admin_token, json=new), 409, "conflict")  # sku taken


def test_another_customers_order_payment_and_shipment_are_404(shopper: Any, new_product: Any,
                                                              admin_token: str) -> None:
    owner, other = shopper(), shopper()
    product = new_product(stock=5)
    order = call("POST", "/api/orders", owner["token"], json={"product_id": product["id"], "quantity": 1})
    order = order.json()
    wait_for_order(owner["token"], order["id"], SUCCEEDED)
    wait_for(lambda: call("GET", f"/api/shipments/{order['id']}", owner["token"]).status_code == 200,
             what="the shipment")
    for kind in ("orders", "payments", "shipments"):
        path = f"/api/{kind}/{order['id']}"
        assert call("GET", path, owner["token"]).status_code == 200, path
        assert_problem(call("GET", path, other["token"]), 404, "not-found")
        assert call("GET", path, admin_token).status_code == 200, path
    missing = call("GET", "/api/orders/2147483647", other["token"])
    assert missing.json()["type"] == assert_problem(call("GET", f"/api/orders/{order['id']}", other["token"]),
                                                    404, "not-found")["type"]
    assert_problem(call("POST", f"/api/orders/{order['id']}/cancel", other["token"]), 404, "not-found")
    assert [o["id"] for o in call("GET", "/api/orders", other["token"]).json()["items"]] == []
    assert_problem(call("GET", f"/api/orders?customer_id={owner['id']}", other["token"]), 403, "forbidden")
    everyone = call("GET", f"/api/orders?customer_id={owner['id']}", admin_token).json()
    assert [o["id"] for o in everyone["items"]] == [order["id"]]
    assert_problem(call("POST", f"/api/shipments/{order['id']}/advance", owner["token"],
                        json={"status": "DELIVERED"}), 403, "forbidden")


# ---------------------------------------------------------------- tokens

def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tampered_expired_and_alg_none_tokens_are_rejected(shopper: Any) -> None:
    me = shopper()
    assert call("GET", "/auth/me", me["token"]).status_code == 200
    header, payload, signature = me["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered = f"{header}.{_segment({**claims, 'role': 'admin'})}.{signature}"
    assert_problem(call("GET", "/api/orders?customer_id=1", tampered), 401, "invalid-token")
    alg_none = f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment({**claims, 'role': 'admin'})}."
    assert_problem(call("GET", "/auth/me", alg_none), 401, "invalid-token")
    other_key = jwt.encode({**claims, "role": "admin"}, "not-the-gateway-secret-" * 3, algorithm="HS256")
    assert_problem(call("GET", "/auth/me", other_key), 401, "invalid-token")
    assert_problem(call("GET", "/auth/me", "not.a.jwt"), 401, "invalid-token")
    assert_problem(call("GET", "/auth/me"), 401, "unauthorized")

    secret = jwt_secret()
    # the e2e stack always has one (platform.sh writes it): its absence is a broken stack
    assert secret, "neither JWT_SECRET nor STACK_DIR/secrets/jwt_secret: cannot sign an expired token"
    expired = jwt.encode({**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, secret,
                         algorithm="HS256")
    body = assert_problem(call("GET", "/auth/me", expired), 401, "invalid-token")
    assert "expired" in body["detail"]
    wrong_audience = jwt.encode({**claims, "aud": "someone-else"}, secret, algorithm="HS256")
    assert_problem(call("GET", "/auth/me", wrong_audience), 401, "invalid-token")


# ---------------------------------------------------------------- malformed requests

def test_oversized_malformed_and_unknown_requests(shopper: Any) -> None:
    me = shopper()
    huge = json.dumps({"items": [{"product_id": 1, "quantity": 1}] * 50_000})
    assert len(huge) > 1_000_000
    assert_problem(call("POST", "/api/orders", me["token"], data=huge,
                        headers={"Content-Type": "application/json"}), 413, "payload-too-large")
    assert_problem(call("POST", "/api/orders", me["token"], data='{"product_id": 1,',
                        headers={"Content-Type": "application/json"}), 400, "malformed-request")
    body = assert_problem(call("POST", "/api/orders", me["token"], json={"product_id": 0, "quantity": "two"}),
                          422, "validation")
    assert set(body["fields"]) == {"product_id", "quantity"}
    assert_problem(call("GET", "/api/nothing/here"), 404, "not-found")
    assert_problem(call("DELETE", "/api/orders", me["token"]), 405, "method-not-allowed")
    assert_problem(call("POST", "/api/orders", me["token"], data="product_id=1",
                        headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
                   "unsupported-media-type")


# ---------------------------------------------------------------- correlation and idempotency

def test_the_request_id_reaches_the_service_and_its_events(shopper: Any, new_product: Any) -> None:
    me = shopper()
    product = new_product(stock=5)
    request_id = f"e2e-{uuid.uuid4().hex}"
    placed = call("POST", "/api/orders", me["token"], json={"product_id": product["id"], "quantity": 1},
                  headers={"X-Request-ID": request_id})
    assert placed.status_code == 202 and placed.headers["X-Request-ID"] == request_id
    order_id = placed.json()["id"]
    assert query("orders", "SELECT correlation_id FROM orders WHERE id = ?", order_id) == [(request_id,)]
    events = wait_for(lambda: query("orders", "SELECT envelope FROM outbox WHERE envelope LIKE ?",
                                    f"%{request_id}%"), what="the order's events")
    assert all(json.loads(row[0])["correlation_id"] == request_id for row in events)
    generated = call("GET", "/health")
    assert len(generated.headers["X-Request-ID"]) >= 16


def test_a_retried_order_is_not_duplicated(shopper: Any, new_product: Any) -> None:
    me = shopper()
    product = new_product(stock=50)
    key = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    body = {"product_id": product["id"], "quantity": 1}
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: call("POST", "/api/orders", me["token"], json=body, headers=key),
                                range(5)))
    answers.append(call("POST", "/api/orders", me["token"], json=body, headers=key))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.headers["Location"] for a in answers}) == 1
    assert call("GET", "/api/orders", me["token"]).json()["total"] == 1
    clash = call("POST", "/api/orders", me["token"], json={**body, "quantity": 2}, headers=key)
    assert_problem(clash, 422, "idempotency-key-reused")


# ---------------------------------------------------------------- the last units, raced

def test_100_concurrent_orders_for_the_last_10_units(rpc: Any, shopper: Any, new_product: Any,
                                                     admin_token: str) -> None:
    """100 one-unit orders race for 10 units from 10 customers at once.

    Contract: the gateway accepts every valid order (202: stock is checked by
    the saga, not at the door), and then exactly 10 orders succeed
    (CONFIRMED, then SHIPPED/DELIVERED) and exactly 90 end REJECTED; stock
    ends at 0 available, never below.
    """
    product = new_product(stock=10)
    buyers = [shopper() for _ in range(10)]

    def order(n: int) -> Any:
        buyer = buyers[n % 10]
        return call("POST", "/api/orders", buyer["token"], json={"product_id": product["id"], "quantity": 1})

    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(order, range(100)))
    assert [a.status_code for a in answers] == [202] * 100, {a.status_code for a in answers}
    order_ids = {a.json()["id"] for a in answers}
    assert len(order_ids) == 100

    def final_statuses() -> dict[int, str] | None:
        statuses = {}
        for buyer in buyers:
            page = call("GET", f"/api/orders?customer_id={buyer['id']}&per_page=100", admin_token).json()
            statuses.update({o["id"]: o["status"] for o in page["items"]})
        settled = all(s in SUCCEEDED | FINAL for s in statuses.values()) and len(statuses) == 100
        return statuses if settled else None

    statuses = wait_for(final_statuses, timeout=180, interval=1, what="all 100 orders to settle")
    assert set(statuses) == order_ids
    succeeded = [i for i, s in statuses.items() if s in SUCCEEDED]
    rejected = [i for i, s in statuses.items() if s == "REJECTED"]
    assert len(succeeded) == 10, statuses
    assert len(rejected) == 90, statuses
    stock = call("GET", f"/api/inventory/{product['id']}").json()
    assert stock["available"] == 0
    assert rpc.inventory.get_stock(product["id"])["available"] == 0


# ---------------------------------------------------------------- service endpoints

def test_service_endpoints() -> None:
    ready = call("GET", "/ready").json()
    assert ready["status"] == "ready" and ready["broker"] == "ok"
    assert all(s["consumers"] >= 1 for s in ready["services"].values())
    metrics = call("GET", "/metrics")
    assert metrics.status_code == 200
    assert 'gateway_circuit_breaker_state{service="orders"}' in metrics.text
    assert "gateway_http_request_duration_seconds" in metrics.text
    spec = call("GET", "/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/orders" in spec["paths"]
    docs = call("GET", "/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert call("GET", "/docs/swagger-ui-bundle.js").status_code == 200
