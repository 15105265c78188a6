"""Each service's Alembic history builds exactly the schema its models declare."""

from __future__ import annotations

from importlib import import_module

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from services.common.config import ROOT, SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models(service, database_flavour, database_factory, monkeypatch):
    metadata = import_module(f"services.{service}.models").Base.metadata
    url = database_factory(type(metadata)(), database_flavour)  # an empty database
    monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", url)
    alembic = Config(str(ROOT / "alembic.ini"), ini_section=service)
    command.upgrade(alembic, "head")
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []

    command.downgrade(alembic, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
