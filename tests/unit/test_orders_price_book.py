"""The orders' read model of catalog prices on a real SQLite database: late events never win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from services.common.cache import TtlCache
from services.orders.adapters.price_book import PriceBook, apply_catalog_events
from services.orders.models import Base

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def product(price, product_id=1, active=True):
    return {"id": product_id, "sku": "SKU-1", "name": "Coffee", "price_cents": price, "currency": "USD",
            "active": active}


def event(event_type, payload, at):
    return {"type": event_type, "payload": payload, "occurred_at": at.isoformat()}


class CountingCatalog:
    def __init__(self, *products):
        self.products, self.calls = {p["id"]: p for p in products}, []

    def call(self, method, product_ids):
        self.calls.append((method, product_ids))
        return [self.products[i] for i in product_ids if i in self.products]


@pytest.fixture
def sessions(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/orders.db")
    Base.metadata.create_all(engine)
    yield sessionmaker(bind=engine)
    engine.dispose()


def apply(sessions, *events):
    with sessions.begin() as session:
        return apply_catalog_events(session, list(events))


def test_a_late_event_never_overwrites_a_newer_state(sessions):
    apply(sessions, event("product_updated", product(300), T0 + timedelta(seconds=2)),
          event("product_created", product(100), T0))
    book = PriceBook(sessions, CountingCatalog(), TtlCache(0))
    assert [p["price_cents"] for p in book.products([1])] == [300]
    apply(sessions, event("product_deactivated", {"product_id": 1}, T0 + timedelta(seconds=1)))
    assert book.products([1])[0]["active"] is True
    apply(sessions, event("product_deactivated", {"product_id": 1}, T0 + timedelta(seconds=3)))
    assert book.products([1])[0]["active"] is False


def test_an_unknown_product_is_read_from_the_catalog_once_then_kept(sessions):
    catalog = CountingCatalog(product(250, product_id=7))
    book = PriceBook(sessions, catalog, TtlCache(0))
    assert [p["price_cents"] for p in book.products([7, 8])] == [250]  # 8 exists nowhere
    assert [p["price_cents"] for p in book.products([7])] == [250]
    assert catalog.calls == [("get_products", [7, 8])]


def test_a_payload_that_is_not_a_product_is_reported_and_the_rest_applied(sessions):
    malformed = apply(sessions, event("product_created", {"id": 1, "sku": "X"}, T0),
                      event("product_created", product(100, product_id=2), T0))
    assert malformed == [0]
    assert [p["id"] for p in PriceBook(sessions, CountingCatalog(), TtlCache(0)).products([1, 2])] == [2]


def test_the_process_keeps_what_it_read_until_it_applies_an_event(sessions):
    apply(sessions, event("product_created", product(100), T0))
    cache = TtlCache(60)
    book = PriceBook(sessions, CountingCatalog(), cache)
    assert [p["price_cents"] for p in book.products([1])] == [100]
    apply(sessions, event("product_updated", product(120), T0 + timedelta(seconds=1)))
    assert [p["price_cents"] for p in book.products([1])] == [100]  # kept: no read
    cache.clear()  # what the service does once the event's transaction committed
    assert [p["price_cents"] for p in book.products([1])] == [120]
    assert (cache.hits, cache.misses) == (1, 2)
