"""SQLite's durability level comes from SQLITE_SYNCHRONOUS (config.yml) and is checked."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from services.common.store import configure_engine


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
