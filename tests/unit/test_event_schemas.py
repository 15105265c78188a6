"""Every event a service emits has a declared payload schema, and emit() enforces it.

(a) The event types a service's code can emit (found in its source) are
    exactly the keys of its ``EVENT_SCHEMAS``: none undeclared, none dead.
(b) ``UnitOfWork.emit`` refuses an undeclared type and a payload breaking its
    schema, and then nothing is recorded: no outbox row, and the
    transaction's other writes roll back with it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from marshmallow import RAISE, Schema, fields
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, select
from sqlalchemy.orm import sessionmaker

from services.common.store import (
    InvalidEventPayload,
    StoreWrapper,
    UndeclaredEvent,
    UnitOfWork,
    inbox_claim,
    messaging_tables,
)

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
SERVICES = ["customers", "catalog", "inventory", "cart", "orders", "payments", "shipping", "notifications"]


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(SERVICES_DIR.parent).with_suffix("").parts)


def _emit_calls(service: str) -> list[tuple[Path, ast.Call]]:
    """Every ``<something>.emit(...)`` call in the service's package source."""
    calls = []
    for path in sorted((SERVICES_DIR / service).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr == "emit":
                calls.append((path, node))
    return calls


def _event_type_argument(call: ast.Call) -> ast.expr:
    if call.args:
        return call.args[0]
    return next(keyword.value for keyword in call.keywords if keyword.arg == "event_type")


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """The object a name or dotted name (``EVENTS``, ``domain.EVENTS``) denotes in ``namespace``."""
    if isinstance(node, ast.Name):
        return namespace[node.id]
    if isinstance(node, ast.Attribute):
        return getattr(_resolve(node.value, namespace), node.attr)
    raise TypeError(ast.unparse(node))


def literal_event_types(service: str) -> set[str]:
    """The event types written as a string literal in an ``.emit("...")`` call."""
    literals = (_literal(_event_type_argument(call)) for _, call in _emit_calls(service))
    return {literal for literal in literals if literal is not None}


def emitted_event_types(service: str) -> set[str]:
    """Every event type the service's code can emit.

    Literals, plus the values of the mapping an ``.emit(MAPPING[key], ...)``
    call looks its type up in (e.g. ``STATUS_EVENTS[status]``), resolved in
    the emitting module's namespace. Any other expression fails the test, so
    a new kind of dynamic emit has to be taught here rather than slip by.
    """
    types: set[str] = set()
    for path, call in _emit_calls(service):
        argument = _event_type_argument(call)
        if _literal(argument) is not None:
            types.add(_literal(argument))
        elif isinstance(argument, ast.Subscript):
            mapping = _resolve(argument.value, vars(importlib.import_module(_module_name(path))))
            assert isinstance(mapping, dict) and all(isinstance(value, str) for value in mapping.values()), (
                f"{path}:{call.lineno}: {ast.unparse(argument.value)} is not a mapping to event types"
            )
            types.update(mapping.values())
        else:
            pytest.fail(f"{path}:{call.lineno}: cannot tell which events `{ast.unparse(argument)}` names")
    return types


def event_schemas(service: str) -> dict[str, Schema]:
    return importlib.import_module(f"services.{service}.schemas").EVENT_SCHEMAS


def service_class(service: str) -> type:
    module = importlib.import_module(f"services.{service}.service")
    return next(value for value in vars(module).values()
                if isinstance(value, type) and getattr(value, "name", None) == service)


def _schemas_within(schema: Schema) -> list[Schema]:
    """``schema`` and every schema nested in it, however deep."""
    found = [schema]
    for field in schema.fields.values():
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            found.extend(_schemas_within(inner.schema))
    return found


# --- (a) declared events match emitted events ---------------------------------


def test_the_source_scan_finds_every_service_emitting():
    assert all(_emit_calls(service) for service in SERVICES)
    assert literal_event_types("catalog") == {"product_created", "product_updated", "product_deactivated"}
    # orders announces statuses through a mapping: the scan resolves it
    orders = emitted_event_types("orders")
    assert {"order_created", "order_delivered", "order_cancellation_requested"} <= orders


@pytest.mark.parametrize("service", SERVICES)
def test_every_literal_emitted_event_is_declared(service):
    undeclared = literal_event_types(service) - set(event_schemas(service))
    assert not undeclared, f"{service} emits events without a schema: {sorted(undeclared)}"


@pytest.mark.parametrize("service", SERVICES)
def test_declared_events_are_exactly_those_emitted(service):
    emitted, declared = emitted_event_types(service), set(event_schemas(service))
    assert not emitted - declared, f"{service} emits events without a schema: {sorted(emitted - declared)}"
    assert not declared - emitted, f"{service} declares schemas nothing emits: {sorted(declared - emitted)}"


@pytest.mark.parametrize("service", SERVICES)
def test_event_schemas_are_strict_and_used_by_the_store(service):
    schemas = event_schemas(service)
    for event_type, schema in schemas.items():
        assert isinstance(schema, Schema), event_type
        for inner in _schemas_within(schema):
            assert inner.unknown == RAISE, f"{event_type}: {type(inner).__name__} tolerates unknown keys"
    assert service_class(service).store.event_schemas is schemas


# a few contracts spelled out, where the shape depends on the event

ORDER = {"order_id": 7, "customer_id": 3, "total_cents": 2000, "currency": "EUR", "reason": None}
ITEMS = [{"product_id": 1, "sku": "SKU-1", "quantity": 2, "unit_price_cents": 1000}]


@pytest.mark.parametrize(("service", "event_type", "payload"), [
    ("orders", "order_created", {**ORDER, "status": "PENDING", "items": ITEMS}),
    ("orders", "order_confirmed", {**ORDER, "status": "CONFIRMED"}),
    ("orders", "order_shipped", {**ORDER, "status": "SHIPPED", "tracking_number": "TRK1"}),
    ("orders", "order_rejected", {**ORDER, "status": "REJECTED", "reason": "payment declined: x"}),
    ("orders", "order_cancellation_requested", {"order_id": 7, "customer_id": 3, "reason": "changed mind"}),
    ("catalog", "product_created", {
        "id": 1, "sku": "SKU-1", "name": "Mug", "description": "", "category": "kitchen",
        "price_cents": 1000, "currency": "EUR", "active": True,
        "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00",
    }),
    ("payments", "payment_captured", {"order_id": 7, "customer_id": 3, "payment_id": 1, "amount_cents": 2000,
                                      "currency": "EUR", "reason": None}),
    ("notifications", "notification_sent", {"notification_ids": [1, 2], "customer_id": 3,
                                            "channels": ["email", "sms"], "event_type": "order_shipped",
                                            "order_id": 7}),
])
def test_payloads_the_code_sends_are_valid(service, event_type, payload):
    assert event_schemas(service)[event_type].validate(payload) == {}


@pytest.mark.parametrize(("service", "event_type", "payload", "field"), [
    ("orders", "order_created", {**ORDER, "status": "PENDING"}, "items"),
    ("orders", "order_created", {**ORDER, "status": "PENDING", "items": ITEMS, "tracking_number": "T"},
     "tracking_number"),
    ("orders", "order_confirmed", {**ORDER, "status": "CONFIRMED", "items": ITEMS}, "items"),
    ("orders", "order_confirmed", {**ORDER, "status": "SHIPPED"}, "status"),
    ("orders", "order_confirmed", {**ORDER, "status": "CONFIRMED", "total_cents": 20.0}, "total_cents"),
    ("orders", "order_created", {**ORDER, "status": "PENDING",
                                 "items": [{**ITEMS[0], "quantity": "2"}]}, "items"),
    # orders refuses a merged line or a total above what inventory and payments accept
    ("orders", "order_created", {**ORDER, "status": "PENDING", "items": [{**ITEMS[0], "quantity": 20_000}]},
     "items"),
    ("orders", "order_confirmed", {**ORDER, "status": "CONFIRMED", "total_cents": 10**13}, "total_cents"),
    ("payments", "payment_declined", {"order_id": 7, "customer_id": 3, "payment_id": 1, "amount_cents": 2000,
                                      "currency": "EUR", "reason": None}, "reason"),
    ("inventory", "stock_reserved", {"order_id": 7, "items": [{"product_id": 1, "quantity": 0}]}, "items"),
    ("shipping", "shipment_shipped", {"order_id": 7, "customer_id": 3, "shipment_id": 1,
                                      "tracking_number": None}, "tracking_number"),
    ("cart", "cart_checked_out", {"customer_id": 3, "order_id": "7"}, "order_id"),
    ("customers", "customer_updated", {"customer_id": 3, "name": "Ann", "email": "a@b.c"}, "email"),
])
def test_payloads_breaking_the_contract_are_invalid(service, event_type, payload, field):
    assert field in event_schemas(service)[event_type].validate(payload)


# --- (b) emit() enforces the schemas ----------------------------------------------


class ThingEventSchema(Schema):
    thing_id = fields.Integer(strict=True, required=True)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """What UnitOfWork and StoreWrapper use of a Store, on a real SQLite file."""
    metadata = MetaData()
    outbox, inbox = messaging_tables(metadata)
    things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
    engine = create_engine(f"sqlite:///{tmp_path}/events.db")
    metadata.create_all(engine)
    woken = []
    fake = SimpleNamespace(
        event_schemas={"thing_made": ThingEventSchema()},
        outbox=outbox,
        inbox=inbox,
        insert_outbox=insert(outbox),
        claim_inbox=inbox_claim(inbox),
        things=things,
        container=SimpleNamespace(service_name="things"),
        Session=sessionmaker(bind=engine),
        relay=SimpleNamespace(wake=lambda: woken.append(True)),
        woken=woken,
    )
    yield fake
    engine.dispose()


def _worker_ctx() -> Any:
    return SimpleNamespace(data={"correlation_id": "corr-1"})


def _count(store: Any, table: Table) -> int:
    with store.Session() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_emit_records_a_valid_event(store):
    with StoreWrapper(store, _worker_ctx()).transaction() as tx:
        tx.session.execute(insert(store.things).values(id=1, name="one"))
        envelope = tx.emit("thing_made", {"thing_id": 1}, aggregate_id=1)
    assert envelope["type"] == "thing_made" and envelope["payload"] == {"thing_id": 1}
    assert tx.emitted == [envelope]
    with store.Session() as session:
        assert session.execute(select(store.outbox.c.event_id, store.outbox.c.event_type)).all() == [
            (envelope["event_id"], "thing_made")
        ]
    assert _count(store, store.things) == 1
    assert store.woken == [True]


@pytest.mark.parametrize(("event_type", "payload", "error"), [
    ("thing_lost", {"thing_id": 1}, UndeclaredEvent),
    ("thing_made", {"thing_id": "1"}, InvalidEventPayload),
    ("thing_made", {}, InvalidEventPayload),
    ("thing_made", {"thing_id": 1, "extra": True}, InvalidEventPayload),
])
def test_emit_refuses_and_records_nothing(store, event_type, payload, error):
    with store.Session() as session:
        uow = UnitOfWork(session, store, _worker_ctx())
        with pytest.raises(error, match=event_type):
            uow.emit(event_type, payload)
        assert uow.emitted == []
        assert session.scalar(select(func.count()).select_from(store.outbox)) == 0


@pytest.mark.parametrize(("event_type", "payload", "error"), [
    ("thing_lost", {"thing_id": 1}, UndeclaredEvent),
    ("thing_made", {"thing_id": None}, InvalidEventPayload),
])
def test_a_refused_emit_rolls_the_whole_transaction_back(store, event_type, payload, error):
    with pytest.raises(error), StoreWrapper(store, _worker_ctx()).transaction() as tx:
        tx.session.execute(insert(store.things).values(id=1, name="one"))
        tx.emit("thing_made", {"thing_id": 1})  # a valid event before the bad one goes too
        tx.emit(event_type, payload)
    assert _count(store, store.things) == 0
    assert _count(store, store.outbox) == 0
    assert store.woken == []


def test_a_service_store_refuses_an_undeclared_event(store):
    """The same check with a real service's declarations: orders cannot emit a catalog event."""
    store.event_schemas = event_schemas("orders")
    with store.Session() as session:
        uow = UnitOfWork(session, store, _worker_ctx())
        with pytest.raises(UndeclaredEvent):
            uow.emit("product_created", {"product_id": 1})
        with pytest.raises(InvalidEventPayload, match="items"):
            uow.emit("order_created", {**ORDER, "status": "PENDING"})
        assert session.scalar(select(func.count()).select_from(store.outbox)) == 0
