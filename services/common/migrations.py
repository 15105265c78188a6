"""Alembic's ``env.py`` for every service: each calls :func:`run_migrations`.

``alembic -n <service> upgrade head`` migrates one service's database (see
``alembic.ini``); ``python -m services.common.migrations`` migrates them all.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine

from services.common.config import ROOT, SERVICES, database_url


def run_migrations(metadata: MetaData, service: str) -> None:
    url = database_url(service)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            # SQLite alters tables by copying them
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def upgrade(service: str) -> None:
    command.upgrade(Config(str(ROOT / "alembic.ini"), ini_section=service), "head")


def main(argv: list[str]) -> None:
    for service in argv or SERVICES:
        upgrade(service)


if __name__ == "__main__":
    main(sys.argv[1:])
