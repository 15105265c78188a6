"""The orders use cases and the saga runner on fakes: no broker, no database."""

from __future__ import annotations

import copy
import logging
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.orders import use_cases
from services.orders.domain.errors import CannotCancel, InvalidOrder, NotStalled, OrderNotFound
from services.orders.domain.saga import RetryPolicy, SagaState, Status, Step
from services.orders.ports import DuplicateRequest, SagaRecord

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class FakeRepository:
    """Orders in a dict; ``lock`` and ``claim`` hand out copies, as a database would."""

    def __init__(self, store: FakeStore):
        self.store = store

    def add(self, customer_id, request_key, priced, correlation_id, now, first_check):
        if request_key is not None and (customer_id, request_key) in self.store.keys:
            raise DuplicateRequest(request_key)
        order_id = len(self.store.records) + 1
        self.store.records[order_id] = SagaRecord(
            id=order_id,
            customer_id=customer_id,
            currency=priced.currency,
            total_cents=priced.total_cents,
            correlation_id=correlation_id,
            tracking_number=None,
            state=SagaState(),
            next_attempt_at=first_check,
            items=tuple((line.product_id, line.quantity) for line in priced.lines),
        )
        if request_key is not None:
            self.store.keys[(customer_id, request_key)] = order_id
        self.add_history(order_id, Status.PENDING, None, now)
        return self.view(order_id)

    def by_request_key(self, customer_id, request_key):
        order_id = self.store.keys.get((customer_id, request_key))
        return None if order_id is None else self.view(order_id)

    def view(self, order_id):
        record = self.store.records.get(order_id)
        if record is None:
            return None
        return {
            "id": record.id,
            "customer_id": record.customer_id,
            "status": record.state.status.value,
            "reason": record.state.reason,
            "stalled_reason": record.stalled_reason,
            "history": [status for oid, status in self.store.history if oid == order_id],
        }

    def page(self, customer_id, status, page, per_page):
        views = [self.view(order_id) for order_id in sorted(self.store.records, reverse=True)]
        views = [
            v for v in views if customer_id in (None, v["customer_id"]) and status in (None, v["status"])
        ]
        return {
            "items": views[(page - 1) * per_page : page * per_page],
            "page": page,
            "per_page": per_page,
            "total": len(views),
        }

    def claim(self, order_id, token, now, until):
        record = self.store.records.get(order_id)
        if record is None or not record.active or record.stalled_reason is not None:
            return None
        if record.lease_until is not None and record.lease_until >= now and record.lease_token != token:
            return None
        record.lease_until, record.lease_token = until, token
        return copy.deepcopy(record)

    def lock(self, order_id):
        record = self.store.records.get(order_id)
        return None if record is None else replace(copy.deepcopy(record), items=())

    def save(self, record, now):
        items = self.store.records[record.id].items
        self.store.records[record.id] = replace(copy.deepcopy(record), items=items)

    def add_history(self, order_id, status, reason, at):
        self.store.history.append((order_id, status.value))

    def kick_due(self, now, until, limit):
        due = [
            r
            for r in self.store.records.values()
            if r.active
            and r.stalled_reason is None
            and (r.next_attempt_at is None or r.next_attempt_at <= now)
            and (r.lease_until is None or r.lease_until < now)
        ][:limit]
        for record in due:
            record.next_attempt_at = until
        return [(r.id, r.correlation_id) for r in due]

    def stalled(self, limit):
        return [
            {"id": r.id, "stalled_reason": r.stalled_reason}
            for r in self.store.records.values()
            if r.stalled_reason is not None
        ][:limit]


class FakeStore:
    """The "database": committed state, plus what each unit of work emitted and consumed."""

    def __init__(self):
        self.records: dict[int, SagaRecord] = {}
        self.keys: dict[tuple[int, str], int] = {}
        self.history: list[tuple[int, str]] = []
        self.events: list[tuple[str, dict]] = []
        self.correlation_ids: list[tuple[str, str | None]] = []  # (event type, its correlation id)
        self.consumed: set[str] = set()
        self.commits = 0

    @contextmanager
    def unit_of_work(self):
        snapshot = copy.deepcopy(
            (self.records, self.keys, self.history, self.events, self.correlation_ids, self.consumed))
        uow = FakeUnitOfWork(self)
        try:
            yield uow
        except BaseException:
            (self.records, self.keys, self.history, self.events, self.correlation_ids,
             self.consumed) = snapshot
            raise
        self.commits += 1


class FakeUnitOfWork:
    def __init__(self, store: FakeStore):
        self.orders = FakeRepository(store)
        self.store = store

    def emit(self, event_type, payload, aggregate_id=None, correlation_id=None):
        self.store.events.append((event_type, payload))
        self.store.correlation_ids.append((event_type, correlation_id))

    def first_delivery(self, envelope):
        if envelope["event_id"] in self.store.consumed:
            return False
        self.store.consumed.add(envelope["event_id"])
        return True


class FakeCatalog:
    def __init__(self, *products):
        self.by_id = {p["id"]: p for p in products}

    def products(self, product_ids):
        return [self.by_id[i] for i in product_ids if i in self.by_id]


class ScriptedParticipants:
    """Records every step; ``refuse`` maps a step to a refusal, ``fail`` to an exception."""

    def __init__(self, refuse=None, fail=None, on_step=None, per_order=None):
        self.steps: list[Step] = []
        self.batches: list[tuple[Step, list[int]]] = []
        self.per_order = per_order or {}
        self.refuse = refuse or {}
        self.fail = fail or {}
        self.on_step = on_step

    def run(self, step, orders):
        """Answers per order, as the RPC ports do; ``fail`` fails the whole call, ``per_order`` maps
        an order id to its own outcome (a refusal, or an exception: a technical failure)."""
        self.batches.append((step, [order.id for order in orders]))
        for order in orders:
            self.steps.append(step)
            if self.on_step:
                self.on_step(step, order)
        if step in self.fail:
            raise self.fail[step]
        return [self.per_order.get(order.id) or self.refuse.get(step) for order in orders]


def product(product_id=1, price=1899, currency="USD", active=True):
    return {
        "id": product_id,
        "sku": f"SKU-{product_id}",
        "name": "Coffee",
        "price_cents": price,
        "currency": currency,
        "active": active,
    }


@pytest.fixture
def store():
    return FakeStore()


def place(store, quantity=1, request_key=None, catalog=None, correlation_id="c-1"):
    return use_cases.place_order(
        store.unit_of_work,
        catalog or FakeCatalog(product()),
        customer_id=7,
        quantities={1: quantity},
        request_key=request_key,
        correlation_id=correlation_id,
        now=NOW,
    )


def runner(store, participants, policy=None, clock=lambda: NOW):
    return use_cases.SagaRunner(store.unit_of_work, participants, clock=clock, policy=policy)


FORWARD = [Step.RESERVE_STOCK, Step.CHARGE_PAYMENT]


def test_placing_an_order_prices_it_and_emits_order_created_with_its_lines(store):
    view = place(store, quantity=2)
    assert view["status"] == "PENDING" and view["history"] == ["PENDING"]
    [(event_type, payload)] = store.events
    assert event_type == "order_created"
    assert payload["total_cents"] == 3798 and payload["items"][0]["unit_price_cents"] == 1899


def test_a_refused_price_writes_nothing(store):
    with pytest.raises(InvalidOrder):
        place(store, catalog=FakeCatalog(product(active=False)))
    assert store.records == {} and store.events == []


def test_a_request_key_makes_a_retry_return_the_first_order(store):
    first = place(store, request_key="k")
    assert place(store, request_key="k")["id"] == first["id"]
    assert len(store.records) == 1 and len(store.events) == 1


def test_a_retry_gets_the_first_order_though_its_product_was_withdrawn_since(store):
    first = place(store, request_key="k")
    assert place(store, request_key="k", catalog=FakeCatalog(product(active=False)))["id"] == first["id"]
    with pytest.raises(InvalidOrder):  # without the key it is a new order, and refused
        place(store, request_key="other", catalog=FakeCatalog(product(active=False)))
    assert len(store.records) == 1


def test_the_happy_path_runs_each_forward_step_once_in_one_transaction_per_step(store):
    order = place(store)
    participants = ScriptedParticipants()
    commits_before = store.commits
    runner(store, participants).advance([order["id"]])
    assert participants.steps == FORWARD
    record = store.records[order["id"]]
    assert record.state.status is Status.CONFIRMED and not record.active
    assert record.lease_token is None  # let go while waiting for shipping
    assert store.commits - commits_before == 1 + len(FORWARD)  # the claim, then one per step
    assert [t for t, _ in store.events] == ["order_created", "order_confirmed"]


def test_orders_advanced_together_share_one_call_per_step_and_one_transaction_per_round(store):
    orders = [place(store, request_key=f"k{n}")["id"] for n in range(3)]
    participants = ScriptedParticipants()
    commits_before = store.commits
    reached = runner(store, participants).advance(orders)
    assert participants.batches == [(step, orders) for step in FORWARD]
    assert store.commits - commits_before == 1 + len(FORWARD)
    assert reached == dict.fromkeys(orders, Status.CONFIRMED)
    assert [t for t, _ in store.events].count("order_confirmed") == 3


def test_in_a_batch_each_order_gets_its_own_outcome(store):
    refused, failing, healthy = (place(store, request_key=f"k{n}")["id"] for n in range(3))
    participants = ScriptedParticipants(per_order={refused: "insufficient stock",
                                                   failing: TimeoutError("inventory timed out")})
    reached = runner(store, participants).advance([refused, failing, healthy])
    assert reached == {refused: Status.REJECTED, failing: Status.PENDING, healthy: Status.CONFIRMED}
    assert participants.batches == [(Step.RESERVE_STOCK, [refused, failing, healthy]),
                                    (Step.CHARGE_PAYMENT, [healthy])]
    retried = store.records[failing]
    assert retried.attempts == 1 and retried.lease_token is None
    assert retried.next_attempt_at == NOW + timedelta(seconds=1)
    assert store.records[refused].state.reason == "insufficient stock"


def test_an_order_named_twice_in_a_batch_runs_once(store):
    order = place(store)["id"]
    participants = ScriptedParticipants()
    runner(store, participants).advance([order, order])
    assert participants.steps == FORWARD


def test_a_whole_call_failing_retries_every_order_of_it(store):
    orders = [place(store, request_key=f"k{n}")["id"] for n in range(2)]
    participants = ScriptedParticipants(fail={Step.RESERVE_STOCK: ConnectionError("inventory down")})
    runner(store, participants).advance(orders)
    assert all(store.records[order].attempts == 1 for order in orders)
    assert all(store.records[order].lease_token is None for order in orders)


def test_out_of_stock_rejects_without_charging(store):
    order = place(store)
    participants = ScriptedParticipants(refuse={Step.RESERVE_STOCK: "insufficient stock"})
    runner(store, participants).advance([order["id"]])
    assert participants.steps == [Step.RESERVE_STOCK]
    assert store.records[order["id"]].state.status is Status.REJECTED
    assert store.records[order["id"]].state.reason == "insufficient stock"


def test_a_decline_releases_the_stock_and_cancels(store):
    order = place(store)
    participants = ScriptedParticipants(refuse={Step.CHARGE_PAYMENT: "payment declined: card_declined"})
    runner(store, participants).advance([order["id"]])
    assert participants.steps == [Step.RESERVE_STOCK, Step.CHARGE_PAYMENT, Step.RELEASE_STOCK]
    assert store.records[order["id"]].state.status is Status.CANCELLED


def test_a_cancellation_requested_while_a_step_runs_is_not_overwritten(store):
    order = place(store)

    def cancel_during_charge(step, _order):
        if step is Step.CHARGE_PAYMENT:
            use_cases.cancel_order(store.unit_of_work, order["id"], 7, "changed my mind", NOW)

    participants = ScriptedParticipants(on_step=cancel_during_charge)
    runner(store, participants).advance([order["id"]])
    assert participants.steps == [
        Step.RESERVE_STOCK,
        Step.CHARGE_PAYMENT,
        Step.REFUND_PAYMENT,
        Step.RELEASE_STOCK,
    ]
    assert store.records[order["id"]].state.status is Status.CANCELLED
    assert store.records[order["id"]].state.reason == "changed my mind"


def test_a_technical_failure_is_retried_later_with_backoff_and_the_lease_released(store):
    order = place(store)
    participants = ScriptedParticipants(fail={Step.CHARGE_PAYMENT: ConnectionError("payments down")})
    runner(store, participants).advance([order["id"]])
    record = store.records[order["id"]]
    assert record.state.stock_reserved and not record.state.payment_charged
    assert record.attempts == 1 and record.next_attempt_at == NOW + timedelta(seconds=1)
    assert record.lease_token is None and record.stalled_reason is None
    participants.fail.clear()
    runner(store, participants).advance([order["id"]])
    assert participants.steps == [Step.RESERVE_STOCK, Step.CHARGE_PAYMENT, Step.CHARGE_PAYMENT]
    assert store.records[order["id"]].attempts == 0


def test_after_max_attempts_the_saga_is_stalled_with_its_reason_until_an_operator_resumes_it(store):
    order = place(store)
    participants = ScriptedParticipants(fail={Step.RESERVE_STOCK: TimeoutError("inventory timed out")})
    run = runner(store, participants, policy=RetryPolicy(max_attempts=3))
    for _ in range(3):
        run.advance([order["id"]])
    record = store.records[order["id"]]
    assert record.stalled_reason == "RESERVE_STOCK failed 3 times; last: inventory timed out"
    assert record.next_attempt_at is None and record.state.status is Status.PENDING
    # stalled: neither the recovery timer nor another event runs it
    assert use_cases.kick_due(store.unit_of_work, NOW + timedelta(hours=1)) == []
    run.advance([order["id"]])
    assert participants.steps.count(Step.RESERVE_STOCK) == 3
    assert [o["id"] for o in use_cases.stalled_orders(store.unit_of_work)] == [order["id"]]

    participants.fail.clear()
    resumed = use_cases.resume_stalled(store.unit_of_work, order["id"], NOW)
    assert resumed["stalled_reason"] is None
    assert use_cases.kick_due(store.unit_of_work, NOW) == [(order["id"], "c-1")]
    run.advance([order["id"]])
    assert store.records[order["id"]].state.status is Status.CONFIRMED
    assert use_cases.stalled_orders(store.unit_of_work) == []


def test_only_a_stalled_saga_can_be_resumed(store):
    order = place(store)
    with pytest.raises(NotStalled):
        use_cases.resume_stalled(store.unit_of_work, order["id"], NOW)


def test_a_cancellation_gets_a_stalled_saga_compensating(store):
    order = place(store)
    participants = ScriptedParticipants(fail={Step.CHARGE_PAYMENT: TimeoutError("payments timed out")})
    run = runner(store, participants, policy=RetryPolicy(max_attempts=1))
    run.advance([order["id"]])
    assert store.records[order["id"]].stalled_reason is not None
    use_cases.cancel_order(store.unit_of_work, order["id"], 7, "too slow", NOW)
    run.advance([order["id"]])
    assert participants.steps[-1] is Step.RELEASE_STOCK
    assert store.records[order["id"]].state.status is Status.CANCELLED


def test_a_runner_never_takes_an_order_another_one_holds(store):
    order = place(store)
    held = FakeRepository(store).claim(order["id"], "other-runner", NOW, NOW + timedelta(seconds=30))
    assert held is not None
    participants = ScriptedParticipants()
    runner(store, participants).advance([order["id"]])
    assert participants.steps == []
    # once the lease expired (the holder crashed) the order is taken over
    runner(store, participants, clock=lambda: NOW + timedelta(seconds=31)).advance([order["id"]])
    assert participants.steps == FORWARD


def shipping_event(event_id, order_id, event_type="shipment_shipped", **payload):
    return {"event_id": event_id, "type": event_type, "payload": {"order_id": order_id, **payload}}


def test_shipping_events_move_the_order_once_per_event(store):
    order = place(store)
    runner(store, ScriptedParticipants()).advance([order["id"]])
    shipped = shipping_event("e-1", order["id"], tracking_number="TRK1")
    assert use_cases.record_shipping(store.unit_of_work, [shipped], now=NOW) == []
    use_cases.record_shipping(store.unit_of_work, [shipped], now=NOW)
    delivered = shipping_event("e-2", order["id"], "shipment_delivered")
    use_cases.record_shipping(store.unit_of_work, [delivered], now=NOW)
    assert store.records[order["id"]].state.status is Status.DELIVERED
    assert store.records[order["id"]].tracking_number == "TRK1"
    assert [s for oid, s in store.history if oid == order["id"]] == [
        "PENDING",
        "CONFIRMED",
        "SHIPPED",
        "DELIVERED",
    ]


def test_a_batch_of_shipping_events_commits_once_and_names_the_orders_that_do_not_exist(store):
    first, second = place(store), place(store)
    for order in (first, second):
        runner(store, ScriptedParticipants()).advance([order["id"]])
    commits = store.commits
    batch = [
        shipping_event("e-1", first["id"]),
        shipping_event("e-2", 999),
        shipping_event("e-3", first["id"], "shipment_delivered"),
        shipping_event("e-4", second["id"], "shipment_delivered"),  # delivered overtook shipped
    ]
    assert use_cases.record_shipping(store.unit_of_work, batch, now=NOW) == [1]
    assert store.commits == commits + 1
    assert store.records[first["id"]].state.status is Status.DELIVERED
    assert [s for oid, s in store.history if oid == second["id"]] == ["PENDING", "CONFIRMED", "DELIVERED"]
    assert [t for t, _ in store.events][-3:] == ["order_shipped", "order_delivered", "order_delivered"]


def test_cancelling_a_shipped_order_is_refused_and_others_orders_are_not_found(store):
    order = place(store)
    runner(store, ScriptedParticipants()).advance([order["id"]])
    use_cases.record_shipping(store.unit_of_work, [shipping_event("e-1", order["id"])], now=NOW)
    with pytest.raises(CannotCancel):
        use_cases.cancel_order(store.unit_of_work, order["id"], 7, "late", NOW)
    with pytest.raises(OrderNotFound):
        use_cases.cancel_order(store.unit_of_work, order["id"], 8, "not mine", NOW)
    with pytest.raises(OrderNotFound):
        use_cases.get_order(store.unit_of_work, order["id"], customer_id=8)


def test_use_cases_and_domain_import_no_framework():
    import ast
    import pathlib

    root = pathlib.Path(use_cases.__file__).parent
    modules = [root / "use_cases.py", root / "ports.py", *sorted((root / "domain").glob("*.py"))]
    forbidden = {"nameko", "kombu", "eventlet", "sqlalchemy"}
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{module.name} imports {name}"
                if name.startswith("services.common"):
                    assert name == "services.common.limits", f"{module.name} imports {name}"


def test_each_order_of_a_batch_emits_and_logs_under_its_own_correlation_id(store, caplog):
    first = place(store, request_key="k1", correlation_id="req-1")["id"]
    second = place(store, request_key="k2", correlation_id="req-2")["id"]
    participants = ScriptedParticipants(per_order={second: TimeoutError("no answer")})
    with caplog.at_level(logging.WARNING, logger=use_cases.__name__):
        runner(store, participants).advance([first, second])
    assert store.correlation_ids[2:] == [("order_confirmed", "req-1")]
    [failure] = caplog.records
    assert (failure.order_id, failure.correlation_id) == (second, "req-2")
