"""The store's engine settings and its inbox claim: SQLite's durability level comes from
SQLITE_SYNCHRONOUS and is checked; a claim inserts once."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, create_engine, func, select, text

from services.common.store import configure_engine, inbox_claim, messaging_tables, utcnow


@pytest.mark.parametrize(("level", "number"), [("NORMAL", 1), ("full", 2)])
def test_every_connection_gets_the_configured_level(tmp_path, level, number):
    engine = create_engine(f"sqlite:///{tmp_path}/service.db")
    configure_engine(engine, level)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == number
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_an_unknown_level_is_refused_before_any_connection(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/service.db")
    with pytest.raises(ValueError, match="SQLITE_SYNCHRONOUS must be one of"):
        configure_engine(engine, "sometimes")


def test_an_inbox_claim_inserts_once_and_is_compiled_once(tmp_path):
    metadata = MetaData()
    _, inbox = messaging_tables(metadata)
    engine = create_engine(f"sqlite:///{tmp_path}/service.db")
    metadata.create_all(engine)
    claim = inbox_claim(inbox)
    row = {"handler": "orders.on_shipment_shipped", "event_id": "e-1", "processed_at": utcnow()}
    with engine.begin() as connection:
        assert connection.execute(claim, row).rowcount == 1
        assert connection.execute(claim, row).rowcount == 0
        assert connection.execute(claim, {**row, "handler": "notifications.on_order_shipped"}).rowcount == 1
        assert connection.execute(select(func.count()).select_from(inbox)).scalar() == 2
    # a statement without a cache key is compiled again at every execution
    assert claim._generate_cache_key() is not None
