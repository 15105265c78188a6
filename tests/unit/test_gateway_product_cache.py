"""The gateway's short-lived cache of product reads (PRODUCT_CACHE_SECONDS)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask

from gateway import create_app
from gateway.blueprints.products import product_cache
from gateway.config import ConfigurationError, Settings
from gateway.testing import TEST_SECRET, FakeTransport, bearer, settings_for_tests, token_for
from services.common import errors as svc
from services.common.cache import TtlCache

PRODUCT = {"id": 1, "sku": "SKU-1", "name": "Mug", "description": "", "category": "kitchen",
           "price_cents": 500, "currency": "USD", "active": True, "created_at": None, "updated_at": None}
PAGE = {"items": [PRODUCT], "total": 1, "page": 1, "per_page": 20}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- TtlCache

def test_a_fresh_entry_is_served_until_it_expires() -> None:
    clock, loads = Clock(), []
    cache = TtlCache(1.0, clock=clock)

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get_or_load("k", load) == 1
    clock.now += 0.9
    assert cache.get_or_load("k", load) == 1
    clock.now += 0.2
    assert cache.get_or_load("k", load) == 2
    assert (cache.hits, cache.misses) == (1, 2)


def test_ttl_zero_always_loads() -> None:
    cache = TtlCache(0)
    answers = iter([1, 2])
    assert cache.get_or_load("k", lambda: next(answers)) == 1
    assert cache.get_or_load("k", lambda: next(answers)) == 2
    assert len(cache) == 0


def test_failed_loads_are_not_cached() -> None:
    cache = TtlCache(10)

    def fail() -> None:
        raise svc.NotFound("no")

    with pytest.raises(svc.NotFound):
        cache.get_or_load("k", fail)
    assert cache.get_or_load("k", lambda: "found") == "found"


def test_a_load_that_started_before_a_clear_does_not_store_its_answer() -> None:
    cache = TtlCache(10)

    def load_then_someone_clears() -> str:
        cache.clear()  # an admin's write lands while this read is in flight
        return "old"

    assert cache.get_or_load("k", load_then_someone_clears) == "old"
    assert cache.get_or_load("k", lambda: "new") == "new"
    assert cache.get_or_load("k", lambda: "newer") == "new"


def test_the_cache_is_bounded() -> None:
    clock = Clock()
    cache = TtlCache(1.0, max_entries=3, clock=clock)
    for key in "abc":
        cache.get_or_load(key, lambda: 1)
    clock.now += 2  # all expired: dropped to make room
    cache.get_or_load("d", lambda: 1)
    assert len(cache) == 1
    for key in "ef":
        cache.get_or_load(key, lambda: 1)
    cache.get_or_load("g", lambda: 1)  # full of fresh entries: start over
    assert len(cache) == 1


def test_concurrent_readers_get_the_value() -> None:
    cache = TtlCache(10)
    results: list[int] = []

    def read() -> None:
        results.append(cache.get_or_load("k", lambda: 7))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [7] * 16


# ---------------------------------------------------------------- the setting

def test_the_setting_defaults_to_one_second_and_zero_turns_it_off() -> None:
    env = {"AMQP_URI": "memory://", "JWT_SECRET": TEST_SECRET}
    assert Settings.from_env(env).product_cache_seconds == 1.0
    assert Settings.from_env({**env, "PRODUCT_CACHE_SECONDS": "0"}).product_cache_seconds == 0
    with pytest.raises(ConfigurationError):
        Settings.from_env({**env, "PRODUCT_CACHE_SECONDS": "-1"})
    with pytest.raises(ConfigurationError):
        Settings.from_env({**env, "PRODUCT_CACHE_SECONDS": "soon"})


# ---------------------------------------------------------------- the endpoints

@pytest.fixture
def transport() -> FakeTransport:
    return (FakeTransport().on("catalog", "get_product", PRODUCT).on("catalog", "list_products", PAGE)
            .on("catalog", "update_product", lambda product_id, changes: {**PRODUCT, **changes})
            .on("catalog", "deactivate_product", lambda product_id: {**PRODUCT, "active": False})
            .on("catalog", "create_product", lambda product: {**PRODUCT, "id": 2, **product}))


@pytest.fixture
def app(transport: FakeTransport) -> Flask:
    return create_app(settings_for_tests(product_cache_seconds=60), transport=transport)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


def test_product_reads_are_served_from_the_cache(client: Any, transport: FakeTransport) -> None:
    for _ in range(3):
        response = client.get("/api/products/1")
        assert response.status_code == 200 and response.get_json() == PRODUCT
    assert len(transport.calls_to("catalog", "get_product")) == 1
    assert client.get("/api/products/2").status_code == 200  # another product: its own entry
    assert len(transport.calls_to("catalog", "get_product")) == 2


def test_listings_are_cached_per_query(client: Any, transport: FakeTransport) -> None:
    for _ in range(3):
        assert client.get("/api/products?q=mug&per_page=5").get_json() == PAGE
    client.get("/api/products?per_page=5&q=mug")  # the same query in another order
    assert len(transport.calls_to("catalog", "list_products")) == 1
    client.get("/api/products?q=mug&per_page=5&page=2")
    client.get("/api/products?q=cup&per_page=5")
    assert len(transport.calls_to("catalog", "list_products")) == 3


def test_an_admins_inactive_listing_is_not_a_shoppers(client: Any, app: Flask,
                                                      transport: FakeTransport) -> None:
    admin = bearer(token_for(app, 7, "admin"))
    client.get("/api/products?include_inactive=true", headers=admin)
    client.get("/api/products?include_inactive=true")  # a shopper's request: include_inactive dropped
    queries = [call.args[0] for call in transport.calls_to("catalog", "list_products")]
    assert [q["include_inactive"] for q in queries] == [True, False]


@pytest.mark.parametrize("write", ["put", "delete", "post"])
def test_an_admins_write_empties_the_cache(client: Any, app: Flask, transport: FakeTransport,
                                           write: str) -> None:
    admin = bearer(token_for(app, 7, "admin"))
    client.get("/api/products/1")
    client.get("/api/products")
    if write == "put":
        assert client.put("/api/products/1", json={"name": "Cup"}, headers=admin).status_code == 200
    elif write == "delete":
        assert client.delete("/api/products/1", headers=admin).status_code == 200
    else:
        new = {"sku": "SKU-2", "name": "Cup", "category": "kitchen", "price_cents": 300, "currency": "USD"}
        assert client.post("/api/products", json=new, headers=admin).status_code == 201
    client.get("/api/products/1")
    client.get("/api/products")
    assert len(transport.calls_to("catalog", "get_product")) == 2
    assert len(transport.calls_to("catalog", "list_products")) == 2


def test_a_failed_write_empties_the_cache_too(client: Any, app: Flask, transport: FakeTransport) -> None:
    client.get("/api/products/1")
    transport.on("catalog", "update_product", svc.ServiceUnavailable("timed out, maybe after writing"))
    response = client.put("/api/products/1", json={"name": "Cup"}, headers=bearer(token_for(app, 7, "admin")))
    assert response.status_code == 503
    client.get("/api/products/1")
    assert len(transport.calls_to("catalog", "get_product")) == 2


def test_a_cached_inactive_product_stays_hidden_from_shoppers(client: Any, app: Flask,
                                                              transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", {**PRODUCT, "active": False})
    assert client.get("/api/products/1", headers=bearer(token_for(app, 7, "admin"))).status_code == 200
    assert client.get("/api/products/1").status_code == 404
    assert len(transport.calls_to("catalog", "get_product")) == 1


def test_not_found_is_not_cached(client: Any, transport: FakeTransport) -> None:
    transport.on("catalog", "get_product", svc.NotFound("product 1 not found"))
    assert client.get("/api/products/1").status_code == 404
    transport.on("catalog", "get_product", PRODUCT)
    assert client.get("/api/products/1").status_code == 200


def test_zero_seconds_turns_the_cache_off(transport: FakeTransport) -> None:
    app = create_app(settings_for_tests(product_cache_seconds=0), transport=transport)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/products/1").status_code == 200
    assert len(transport.calls_to("catalog", "get_product")) == 3
    with app.app_context():
        assert product_cache().ttl == 0
