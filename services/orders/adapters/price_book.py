"""The catalog as the orders service prices from it: a local read model, kept current by events.

Pricing an order reads ``product_prices`` in the orders database instead of asking the catalog
over RPC for every order. The catalog's product events (created, updated, deactivated) keep it
current; each row remembers when the state it holds was the catalog's (``as_of``: the event's
``occurred_at``, or the moment of an RPC read), so an event that arrives late, on another queue,
never overwrites a newer state. A product the model does not know yet (created a moment ago, or
known to the catalog from before this service consumed its events) is read from the catalog over
RPC once and kept.

An order placed within the moment a price change takes to arrive is priced at the previous price:
the same thing a customer sees who loaded the page a moment earlier.

The rows read are kept in the process for ``ORDERS_PRICE_CACHE_SECONDS`` (``PriceCache``): reading
them for every order was a third of ``create_order``. The process that applies a catalog event
drops what it kept at once; another replica of the service keeps its copy at most that long.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError

from services.common.cache import TtlCache
from services.common.config import setting
from services.common.store import upsert, utcnow
from services.orders.models import ProductPrice

prices = ProductPrice.__table__
FIELDS = ("sku", "name", "price_cents", "currency", "active")


class PriceCache(DependencyProvider):
    """The products a service container read lately, by id; the service clears it when it has
    applied a catalog event."""

    def setup(self) -> None:
        self.cache = TtlCache(float(setting("ORDERS_PRICE_CACHE_SECONDS", "5")))

    def get_dependency(self, worker_ctx: Any) -> TtlCache:
        return self.cache


class PriceBook:
    """A ``ports.Catalog`` over the local model, falling back to the catalog's RPC for misses."""

    def __init__(self, session_factory: Any, catalog: Any, cache: TtlCache):
        self.session_factory = session_factory
        self.catalog = catalog
        self.cache = cache

    def products(self, product_ids: list[int]) -> list[dict[str, Any]]:
        return list(self.cache.get_many(product_ids, self._load).values())

    def _load(self, product_ids: list[int]) -> dict[int, dict[str, Any]]:
        with self.session_factory() as session:
            found = {
                row.product_id: {"id": row.product_id, **{name: getattr(row, name) for name in FIELDS}}
                for row in session.execute(select(prices).where(prices.c.product_id.in_(product_ids)))
            }
        missing = [product_id for product_id in product_ids if product_id not in found]
        if missing:
            fetched = self.catalog.call("get_products", missing)
            with self.session_factory.begin() as session:
                keep(session, fetched, utcnow())
            found.update({product["id"]: product for product in fetched})
        return found


def keep(session: Any, products: list[dict[str, Any]], as_of: datetime) -> None:
    """Store the products as the catalog had them at ``as_of``, unless a newer state is stored."""
    for product in products:
        values = {name: product[name] for name in FIELDS}
        statement = upsert(session, prices).values(product_id=product["id"], as_of=as_of, **values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[prices.c.product_id],
                set_={**values, "as_of": as_of},
                where=prices.c.as_of <= as_of,
            )
        )


def apply_catalog_events(session: Any, events: list[dict[str, Any]]) -> list[int]:
    """Bring the model up to date with the catalog's product events; the indices of those whose
    payload is not a product (they can never apply: the caller parks them). Applying an event twice
    changes nothing, so a redelivery needs no inbox."""
    malformed = []
    for index, event in enumerate(events):
        try:
            with session.begin_nested():
                as_of = datetime.fromisoformat(event["occurred_at"])
                if event["type"] == "product_deactivated":
                    session.execute(
                        update(prices)
                        .where(prices.c.product_id == event["payload"]["product_id"], prices.c.as_of <= as_of)
                        .values(active=False, as_of=as_of)
                    )
                else:
                    keep(session, [event["payload"]], as_of)
        except (KeyError, TypeError, ValueError, DataError, IntegrityError):
            malformed.append(index)
    return malformed
