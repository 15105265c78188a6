"""Circuit breakers, rate limits and idempotency, with the RPC layer faked."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

import pytest
from flask import Flask

from gateway import create_app
from gateway.testing import FakeTransport, bearer, settings_for_tests, token_for
from services.common import errors as svc

PRODUCT = {"id": 1, "sku": "SKU-1", "name": "Mug", "description": "", "category": "kitchen",
           "price_cents": 500, "currency": "USD", "active": True}
ORDER = {"id": 11, "customer_id": 5, "status": "PENDING", "reason": None, "currency": "USD",
         "total_cents": 500, "cancellation_requested": False, "items": [], "history": [],
         "created_at": None, "updated_at": None}


def _redis() -> Any:
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    try:
        client.ping()
    except redis.RedisError:
        # make test starts Redis (scripts/infra.sh): a missing one is a failure, not a pass
        pytest.fail("no Redis at REDIS_URL; start it with: bash scripts/infra.sh start redis")
    return client


# ------------------------------------------------------------- circuit breakers

class Flaky:
    """A service that fails while ``down`` is set."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    def __call__(self, product_id: int) -> dict[str, Any]:
        self.calls += 1
        if self.down:
            raise svc.ServiceUnavailable("catalog.get_product timed out")
        return PRODUCT


def test_breaker_opens_fails_fast_half_opens_and_closes() -> None:
    catalog = Flaky()
    transport = FakeTransport().on("catalog", "get_product", catalog)
    app = create_app(settings_for_tests(breaker_fail_max=3, breaker_reset_timeout=1.0), transport=transport)
    client = app.test_client()

    for _ in range(3):
        assert client.get("/api/products/1").status_code == 503
    assert catalog.calls == 3

    started = time.perf_counter()
    response = client.get("/api/products/1")
    elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert response.get_json()["type"].endswith("/service-unavailable")
    assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert elapsed < 0.05
    assert catalog.calls == 3  # the open breaker did not call the service
    assert 'gateway_circuit_breaker_state{service="catalog"} 2.0' in client.get("/metrics").text

    catalog.down = False
    time.sleep(1.1)
    assert client.get("/api/products/1").status_code == 200  # the half-open trial call
    assert client.get("/api/products/1").status_code == 200
    assert 'gateway_circuit_breaker_state{service="catalog"} 0.0' in client.get("/metrics").text


def test_a_failed_trial_call_opens_the_breaker_again() -> None:
    catalog = Flaky()
    transport = FakeTransport().on("catalog", "get_product", catalog)
    app = create_app(settings_for_tests(breaker_fail_max=2, breaker_reset_timeout=0.5), transport=transport)
    client = app.test_client()
    for _ in range(2):
        client.get("/api/products/1")
    time.sleep(0.6)
    assert client.get("/api/products/1").status_code == 503
    assert catalog.calls == 3
    assert client.get("/api/products/1").status_code == 503
    assert catalog.calls == 3


def test_business_errors_do_not_trip_the_breaker() -> None:
    transport = FakeTransport().on("catalog", "get_product", svc.NotFound("product 1 not found"))
    app = create_app(settings_for_tests(breaker_fail_max=2), transport=transport)
    client = app.test_client()
    for _ in range(5):
        assert client.get("/api/products/1").status_code == 404
    assert len(transport.calls) == 5


def test_one_service_failing_leaves_the_others_alone() -> None:
    transport = FakeTransport().on("catalog", "get_product", svc.ServiceUnavailable("down")).on(
        "inventory", "get_stock", {"product_id": 1, "available": 1, "reserved": 0})
    app = create_app(settings_for_tests(breaker_fail_max=1), transport=transport)
    client = app.test_client()
    client.get("/api/products/1")
    assert client.get("/api/products/1").status_code == 503
    breakers = app.extensions["gateway.rpc"].breakers
    assert breakers["catalog"].current_state == "open"
    assert breakers["inventory"].current_state == "closed"


def test_breaker_state_is_shared_through_redis() -> None:
    redis = _redis()
    namespace = f"unit-{uuid.uuid4().hex[:8]}"
    down = FakeTransport().on("catalog", "get_product", svc.ServiceUnavailable("down"))
    up = FakeTransport().on("catalog", "get_product", PRODUCT)
    settings = settings_for_tests(breaker_fail_max=2, breaker_reset_timeout=30, redis_namespace=namespace)
    first = create_app(settings, transport=down, redis=redis).test_client()
    second = create_app(settings, transport=up, redis=redis).test_client()
    try:
        assert second.get("/api/products/1").status_code == 200
        for _ in range(2):
            first.get("/api/products/1")
        # the other replica sees the open breaker and does not even try
        assert second.get("/api/products/1").status_code == 503
        assert up.calls_to("catalog", "get_product").__len__() == 1
    finally:
        for key in redis.scan_iter(f"{namespace}:*"):
            redis.delete(key)


def test_concurrent_calls_are_not_serialised_by_the_breaker() -> None:
    release = threading.Event()
    inside = []

    def slow(product_id: int) -> dict[str, Any]:
        inside.append(product_id)
        release.wait(2)
        return PRODUCT

    transport = FakeTransport().on("catalog", "get_product", slow)
    app = create_app(settings_for_tests(), transport=transport)
    results: list[int] = []
    def fetch() -> None:
        results.append(app.test_client().get("/api/products/1").status_code)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2
    while len(inside) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(inside) == 4  # all four were inside the service call at once
    release.set()
    for thread in threads:
        thread.join()
    assert results == [200] * 4


# ------------------------------------------------------------- rate limits

def test_api_limit_is_per_user_with_headers_and_recovers() -> None:
    transport = FakeTransport().on("catalog", "get_product", PRODUCT)
    app = create_app(settings_for_tests(rate_limit_api="3 per 2 seconds"), transport=transport)
    client = app.test_client()
    alice, bob = bearer(token_for(app, 1)), bearer(token_for(app, 2))
    answers = [client.get("/api/products/1", headers=alice) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert answers[-1].headers["X-RateLimit-Remaining"] == "0"

    limited = client.get("/api/products/1", headers=alice)
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert limited.get_json()["type"].endswith("/rate-limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 3  # the window, rounded up (never early)
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(limited.headers.keys())
    assert client.get("/api/products/1", headers=bob).status_code == 200  # another user's own budget

    time.sleep(int(limited.headers["Retry-After"]) + 0.1)
    assert client.get("/api/products/1", headers=alice).status_code == 200


def test_api_limit_in_redis_is_shared_by_replicas_and_counts_in_one_round_trip() -> None:
    redis = _redis()
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    settings = settings_for_tests(rate_limit_api="3 per 5 seconds", redis_url=url, redis_namespace=namespace)
    transport = FakeTransport().on("catalog", "get_product", PRODUCT)
    first, second = create_app(settings, transport=transport), create_app(settings, transport=transport)
    # an unlimited request before the first limited one (the limiter creates its storage at that one)
    assert first.test_client().get("/health").status_code == 200
    assert first.test_client().get("/api/products/1", headers=bearer(token_for(first, 99))).status_code == 200
    connection = first.extensions["gateway.limiter"].storage.get_connection()
    commands: list[str] = []
    counted = connection.execute_command

    def counting(*args: Any, **kwargs: Any) -> Any:
        commands.append(str(args[0]))
        return counted(*args, **kwargs)

    connection.execute_command = counting
    alice = bearer(token_for(first, 1))
    try:
        answers = [first.test_client().get("/api/products/1", headers=alice),
                   second.test_client().get("/api/products/1", headers=alice)]
        assert commands == ["EVALSHA"]  # the first app's request: counted, headers and all, in one trip
        answers.append(first.test_client().get("/api/products/1", headers=alice))
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
        # the window's end, a whole second later than it is (flask-limiter's reset_at adds one)
        assert 0 < float(answers[-1].headers["X-RateLimit-Reset"]) - time.time() <= 5 + 1
        limited = second.test_client().get("/api/products/1", headers=alice)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 5 + 1
    finally:
        for key in redis.scan_iter(f"{namespace}:*"):
            redis.delete(key)


def test_auth_limit_is_per_ip() -> None:
    transport = FakeTransport().on("customers", "authenticate", svc.Unauthorized("invalid email or password"))
    app = create_app(settings_for_tests(rate_limit_auth="2 per 5 seconds"), transport=transport)
    client = app.test_client()
    attempt = {"email": "john@example.com", "password": "guess"}
    statuses = [client.post("/auth/login", json=attempt).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    other_ip = client.post("/auth/login", json=attempt, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other_ip.status_code == 401
    assert len(transport.calls) == 3


def test_ops_endpoints_are_not_limited() -> None:
    app = create_app(settings_for_tests(rate_limit_api="1 per minute"), transport=FakeTransport())
    client = app.test_client()
    assert all(client.get("/health").status_code == 200 for _ in range(5))


# ------------------------------------------------------------- idempotency

@pytest.fixture
def ordering() -> tuple[Flask, FakeTransport, dict[str, str]]:
    counter = iter(range(100, 1000))
    transport = FakeTransport().on("orders", "create_order",
                                   lambda customer_id, items, request_key: {**ORDER, "id": next(counter),
                                                                            "customer_id": customer_id})
    app = create_app(settings_for_tests(), transport=transport)
    return app, transport, bearer(token_for(app, 5))


def test_same_key_same_body_replays_without_a_second_order(ordering: Any) -> None:
    app, transport, auth = ordering
    client = app.test_client()
    headers = {**auth, "Idempotency-Key": "order-1"}
    first = client.post("/api/orders", json={"product_id": 1, "quantity": 1}, headers=headers)
    again = client.post("/api/orders", json={"quantity": 1, "product_id": 1}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.get_json() == again.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(transport.calls_to("orders", "create_order")) == 1


def test_same_key_different_body_is_422(ordering: Any) -> None:
    app, transport, auth = ordering
    client = app.test_client()
    headers = {**auth, "Idempotency-Key": "order-2"}
    client.post("/api/orders", json={"product_id": 1, "quantity": 1}, headers=headers)
    clash = client.post("/api/orders", json={"product_id": 1, "quantity": 2}, headers=headers)
    assert clash.status_code == 422
    assert clash.get_json()["type"].endswith("/idempotency-key-reused")
    assert len(transport.calls_to("orders", "create_order")) == 1


def test_keys_are_per_user(ordering: Any) -> None:
    app, transport, auth = ordering
    client = app.test_client()
    body = {"product_id": 1, "quantity": 1}
    client.post("/api/orders", json=body, headers={**auth, "Idempotency-Key": "k"})
    client.post("/api/orders", json=body, headers={**bearer(token_for(app, 6)), "Idempotency-Key": "k"})
    assert len(transport.calls_to("orders", "create_order")) == 2


def test_concurrent_duplicates_create_one_order(ordering: Any) -> None:
    app, transport, auth = ordering
    gate = threading.Event()
    original = transport.handlers[("orders", "create_order")]

    def slow(**kwargs: Any) -> Any:
        gate.wait(2)
        return original(**kwargs)

    transport.on("orders", "create_order", slow)
    answers: list[Any] = []
    headers = {**auth, "Idempotency-Key": "together"}

    def post() -> None:
        answers.append(app.test_client().post("/api/orders", json={"product_id": 1, "quantity": 1},
                                              headers=headers))

    threads = [threading.Thread(target=post) for _ in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * 5
    assert len({a.get_json()["id"] for a in answers}) == 1
    assert len(transport.calls_to("orders", "create_order")) == 1


def test_a_5xx_is_not_stored(ordering: Any) -> None:
    app, transport, auth = ordering
    client = app.test_client()
    original = transport.handlers[("orders", "create_order")]
    transport.on("orders", "create_order", svc.ServiceUnavailable("down"))
    headers = {**auth, "Idempotency-Key": "retry-me"}
    body = {"product_id": 1, "quantity": 1}
    assert client.post("/api/orders", json=body, headers=headers).status_code == 503
    transport.on("orders", "create_order", original)
    assert client.post("/api/orders", json=body, headers=headers).status_code == 202
    # had the first call made its order after all, orders would know the retry by its request key
    failed, retried = (call.kwargs["request_key"] for call in transport.calls_to("orders", "create_order"))
    assert failed == retried and failed.startswith("idempotency-key:") and "retry-me" not in failed
    assert len(failed) <= 100  # orders' request_key column


def test_an_order_without_idempotency_key_has_no_request_key(ordering: Any) -> None:
    app, transport, auth = ordering
    assert app.test_client().post("/api/orders", json={"product_id": 1, "quantity": 1},
                                  headers=auth).status_code == 202
    (call,) = transport.calls_to("orders", "create_order")
    assert call.kwargs["request_key"] is None


def test_business_errors_are_replayed(ordering: Any) -> None:
    app, transport, auth = ordering
    client = app.test_client()
    invalid = svc.ValidationFailed("invalid input", {"fields": {"items": ["x"]}})
    transport.on("orders", "create_order", invalid)
    headers = {**auth, "Idempotency-Key": "bad"}
    first = client.post("/api/orders", json={"product_id": 99, "quantity": 1}, headers=headers)
    again = client.post("/api/orders", json={"product_id": 99, "quantity": 1}, headers=headers)
    assert first.status_code == again.status_code == 422
    assert len(transport.calls_to("orders", "create_order")) == 1


def test_invalid_keys_are_rejected(ordering: Any) -> None:
    app, _transport, auth = ordering
    response = app.test_client().post("/api/orders", json={"product_id": 1, "quantity": 1},
                                      headers={**auth, "Idempotency-Key": "x" * 300})
    assert response.status_code == 422


def test_checkout_is_idempotent_too(ordering: Any) -> None:
    app, transport, auth = ordering
    transport.on("cart", "checkout", lambda customer_id: {**ORDER, "customer_id": customer_id})
    client = app.test_client()
    headers = {**auth, "Idempotency-Key": "checkout-1"}
    first = client.post("/api/cart/checkout", headers=headers)
    again = client.post("/api/cart/checkout", headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.headers["Location"] == "/api/orders/11"
    assert len(transport.calls_to("cart", "checkout")) == 1


def test_idempotency_records_survive_in_redis_across_apps() -> None:
    redis = _redis()
    namespace = f"unit-{uuid.uuid4().hex[:8]}"
    transport = FakeTransport().on("orders", "create_order", lambda customer_id, items, request_key: ORDER)
    settings = settings_for_tests(redis_namespace=namespace)
    first = create_app(settings, transport=transport, redis=redis)
    second = create_app(settings, transport=transport, redis=redis)  # a restarted or other replica
    headers = {**bearer(token_for(first, 5)), "Idempotency-Key": "survives"}
    try:
        a = first.test_client().post("/api/orders", json={"product_id": 1, "quantity": 1}, headers=headers)
        b = second.test_client().post("/api/orders", json={"product_id": 1, "quantity": 1}, headers=headers)
        assert a.status_code == b.status_code == 202 and a.get_json() == b.get_json()
        assert len(transport.calls_to("orders", "create_order")) == 1
    finally:
        for key in redis.scan_iter(f"{namespace}:*"):
            redis.delete(key)


def test_redis_trouble_is_a_503_not_a_500() -> None:
    import redis

    class DeadRedis:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise redis.ConnectionError("Connection refused")

            return fail

    transport = FakeTransport().on("orders", "create_order", lambda customer_id, items, request_key: ORDER)
    app = create_app(settings_for_tests(), transport=transport, redis=DeadRedis())
    response = app.test_client().post("/api/orders", json={"product_id": 1, "quantity": 1},
                                      headers={**bearer(token_for(app, 5)), "Idempotency-Key": "k"})
    assert response.status_code == 503
    assert response.get_json()["type"].endswith("/service-unavailable")
    assert transport.calls == []


class CountingRedis:
    """A Redis client that records the commands the breakers send."""

    def __init__(self, redis: Any):
        self._redis = redis
        self.commands: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._redis, name)
        if not callable(attribute):
            return attribute

        def command(*args: Any, **kwargs: Any) -> Any:
            self.commands.append(name)
            return attribute(*args, **kwargs)

        return command


def test_a_success_costs_one_redis_read_and_no_write_while_nothing_failed() -> None:
    redis = CountingRedis(_redis())
    namespace = f"unit-{uuid.uuid4().hex[:8]}"
    transport = FakeTransport().on("catalog", "get_product", PRODUCT)
    app = create_app(settings_for_tests(redis_namespace=namespace), transport=transport, redis=redis)
    client = app.test_client()
    try:
        client.get("/api/products/1")
        redis.commands.clear()
        for _ in range(3):
            assert client.get("/api/products/1").status_code == 200
        assert redis.commands == ["mget"] * 3
    finally:
        for key in redis.scan_iter(f"{namespace}:*"):
            redis.delete(key)


def test_a_success_still_resets_failures_seen_in_redis() -> None:
    redis = CountingRedis(_redis())
    namespace = f"unit-{uuid.uuid4().hex[:8]}"
    outcomes: list[Any] = []

    def answer(_product_id: int) -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    transport = FakeTransport().on("catalog", "get_product", answer)
    settings = settings_for_tests(breaker_fail_max=2, breaker_reset_timeout=30, redis_namespace=namespace)
    # two replicas sharing the breaker: failures on one, successes on the other
    first = create_app(settings, transport=transport, redis=redis).test_client()
    second = create_app(settings, transport=transport, redis=redis).test_client()
    counter = f"{namespace}:breaker:catalog:pybreaker:fail_counter"
    try:
        outcomes[:] = [svc.ServiceUnavailable("down"), PRODUCT, svc.ServiceUnavailable("down"), PRODUCT]
        assert first.get("/api/products/1").status_code == 503
        assert int(redis.get(counter)) == 1
        redis.commands.clear()
        assert second.get("/api/products/1").status_code == 200  # saw 1 failure: resets it
        assert "set" in redis.commands and int(redis.get(counter)) == 0
        assert first.get("/api/products/1").status_code == 503  # one failure again, not two in a row
        assert second.get("/api/products/1").status_code == 200
        breakers = first.application.extensions["gateway.rpc"].breakers
        assert breakers["catalog"].current_state == "closed"
        outcomes[:] = [svc.ServiceUnavailable("down")] * 2
        first.get("/api/products/1")
        first.get("/api/products/1")
        assert breakers["catalog"].current_state == "open"
    finally:
        for key in redis.scan_iter(f"{namespace}:*"):
            redis.delete(key)
