"""A service's database: nameko-sqlalchemy plus the outbox and the inbox.

``Store`` extends nameko-sqlalchemy's ``Database`` with one unit of work per
use case: the state change, the events it causes (outbox rows) and the ids of
the events it consumed (inbox rows) commit in one transaction. A relay
publishes the outbox afterwards, so a crash between commit and publish loses
nothing, and a redelivered event finds its id and changes nothing.

SQLite rule: the Python driver blocks the eventlet hub, so never make an RPC
call (or anything else that yields) between a write and its commit; do the
calls first, then open the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema
from nameko.containers import WorkerContext
from nameko_sqlalchemy.database import Database, DatabaseWrapper
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    TextClause,
    TypeDecorator,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.common.config import setting
from services.common.envelope import make_envelope
from services.common.outbox import OutboxRelay

OUTBOX_TABLE = "outbox"
INBOX_TABLE = "processed_events"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """A timestamp that reads back timezone-aware on every database.

    SQLite keeps no zone, so without this the same column comes back aware
    from PostgreSQL and naive from SQLite.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: use services.common.store.utcnow()")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the outbox and inbox tables to a service's metadata."""
    outbox = Table(
        OUTBOX_TABLE,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("envelope", JSON, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("published_at", UtcDateTime, nullable=True, index=True),
    )
    inbox = Table(
        INBOX_TABLE,
        metadata,
        Column("handler", String(200), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", UtcDateTime, nullable=False),
    )
    return outbox, inbox


def inbox_claim(inbox: Table) -> TextClause:
    """``INSERT … ON CONFLICT DO NOTHING`` into the inbox, which SQLite and PostgreSQL both take: a
    claim that exists inserts no row (rowcount 0), with no savepoint to catch the duplicate key.

    Text rather than a dialect's ``insert().on_conflict_do_nothing()``: SQLAlchemy 2.0 gives that no
    cache key, so it was compiled anew at every claim (158 µs against 57 µs for this, measured).
    """
    columns = ("handler", "event_id", "processed_at")
    return text(
        f"INSERT INTO {inbox.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        "ON CONFLICT DO NOTHING"
    ).bindparams(bindparam("processed_at", type_=inbox.c.processed_at.type))


#: SQLite's ``synchronous`` levels the ``SQLITE_SYNCHRONOUS`` environment setting may name
SQLITE_SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_SQLITE_SYNCHRONOUS = "NORMAL"


def configure_engine(engine: Engine, sqlite_synchronous: str) -> None:
    """Per-dialect settings every service needs.

    ``sqlite_synchronous`` is SQLite's durability level. In WAL mode NORMAL makes a commit durable
    against the crash of any process (``kill -9`` included) without an fsync per commit; an OS
    crash or a power loss can roll back the last commits before a checkpoint. FULL fsyncs every
    commit: 0.74 ms of wall time on this machine's disk, during which the driver holds the eventlet
    hub (docs/performance.md, round 4). PostgreSQL, the deployments' database, fsyncs every commit.
    """
    level = sqlite_synchronous.upper()
    if level not in SQLITE_SYNCHRONOUS_LEVELS:
        raise ValueError(f"SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS_LEVELS)}, "
                         f"not {sqlite_synchronous!r}")
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            # WAL lets the outbox relay read while a worker writes
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={level}")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    elif engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg2":
        # psycopg2 would block the eventlet hub during a query otherwise
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()


#: the dialects whose ``INSERT ... ON CONFLICT`` :func:`upsert` builds on
UPSERT_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert(session: Session, table: Any) -> Any:
    """An ``INSERT`` into ``table`` that takes ``.on_conflict_do_update`` on this session's database."""
    return UPSERT_INSERTS[session.get_bind().dialect.name](table)


def paginate(session: Session, statement: Select, order_by: Any, params: dict[str, Any],
             schema: Schema) -> dict[str, Any]:
    """One page of ``statement``'s rows, dumped with ``schema``, and the total count."""
    page, per_page = params["page"], params["per_page"]
    total = session.scalar(select(func.count()).select_from(statement.subquery()))
    rows = session.scalars(statement.order_by(*order_by).offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": schema.dump(rows, many=True), "page": page, "per_page": per_page, "total": total}


class UndeclaredEvent(Exception):
    """A service emitted an event type missing from its ``EVENT_SCHEMAS``."""


class InvalidEventPayload(Exception):
    """An event payload broke its declared schema."""


class UnitOfWork:
    """One transaction: a session, the events to emit, the events consumed."""

    def __init__(self, session: Session, store: Store, worker_ctx: WorkerContext):
        self.session = session
        self._store = store
        self._worker_ctx = worker_ctx
        self.emitted: list[dict[str, Any]] = []

    @property
    def correlation_id(self) -> str | None:
        return self._worker_ctx.data.get("correlation_id")

    def emit(self, event_type: str, payload: dict[str, Any], aggregate_id: Any = None,
             correlation_id: str | None = None) -> dict[str, Any]:
        """Record an event; it is published only if this transaction commits.

        The envelope carries ``correlation_id`` when given (a timer's worker has none of its own:
        it passes the one its record kept), else the running call's.

        The payload must match the schema the service declared for the event
        type: consumers rely on that contract, so a mismatch is a bug and
        aborts the transaction.
        """
        schema = self._store.event_schemas.get(event_type)
        if schema is None:
            raise UndeclaredEvent(f"{self._store.container.service_name} emits undeclared event {event_type}")
        problems = schema.validate(payload)
        if problems:
            raise InvalidEventPayload(f"{event_type} payload does not match its schema: {problems}")
        envelope = make_envelope(
            self._store.container.service_name,
            event_type,
            payload,
            correlation_id=correlation_id or self.correlation_id,
            aggregate_id=aggregate_id,
        )
        self.session.execute(self._store.insert_outbox, {
            "event_id": envelope["event_id"], "event_type": event_type, "envelope": envelope,
            "created_at": utcnow(),
        })
        self.emitted.append(envelope)
        return envelope

    def first_delivery(self, envelope: dict[str, Any], handler: str | None = None) -> bool:
        """Claim ``envelope`` for the running handler (or the one named: a batch handler claims
        each event under the handler method its queue is named after); False if already processed.

        The claim commits with the handler's effects, so a redelivery after a
        commit is skipped and a redelivery after a crash is processed again.
        """
        method = handler or self._worker_ctx.entrypoint.method_name
        key = f"{self._store.container.service_name}.{method}"
        claim = {"handler": key, "event_id": envelope["event_id"], "processed_at": utcnow()}
        # ON CONFLICT DO NOTHING: a claim that exists inserts no row, without a savepoint per claim
        return bool(self.session.execute(self._store.claim_inbox, claim).rowcount)


class StoreWrapper(DatabaseWrapper):
    def __init__(self, store: Store, worker_ctx: WorkerContext):
        super().__init__(store.Session)
        self._store = store
        self._worker_ctx = worker_ctx

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """Commit on success, roll back on error, then wake the relay."""
        session = self.Session()
        uow = UnitOfWork(session, self._store, self._worker_ctx)
        try:
            yield uow
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        if uow.emitted:
            self._store.relay.wake()


class Store(Database):
    """nameko-sqlalchemy ``Database`` with a transactional outbox and inbox."""

    def __init__(self, declarative_base: Any, event_schemas: dict[str, Schema], **kwargs: Any):
        super().__init__(declarative_base, **kwargs)
        #: event type -> the marshmallow schema its payload must match
        self.event_schemas = event_schemas
        tables = declarative_base.metadata.tables
        self.outbox = tables[OUTBOX_TABLE]
        self.inbox = tables[INBOX_TABLE]
        # built once, values passed at execution: a statement built per call has its cache key
        # worked out anew each time (docs/performance.md), one reused has it memoized
        self.insert_outbox = insert(self.outbox)
        self.claim_inbox = inbox_claim(self.inbox)

    def setup(self) -> None:
        super().setup()
        # the local run's setting only: the deployments run PostgreSQL
        configure_engine(self.engine, setting("SQLITE_SYNCHRONOUS", DEFAULT_SQLITE_SYNCHRONOUS))
        self.relay = OutboxRelay(
            service_name=self.container.service_name,
            amqp_uri=self.container.config["AMQP_URI"],
            session_factory=self.Session,
            outbox=self.outbox,
        )

    def start(self) -> None:
        self.relay.start()

    def stop(self) -> None:
        self.relay.stop()
        super().stop()

    def kill(self) -> None:
        self.relay.stop()
        super().kill()

    def get_dependency(self, worker_ctx: WorkerContext) -> StoreWrapper:
        db = StoreWrapper(self, worker_ctx)
        self.dbs[worker_ctx] = db
        return db
