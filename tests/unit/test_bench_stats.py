"""The benchmark's judged figures from small synthetic inputs: CPU per completed order, the share
accepted within the saga phase, constant-rate steps and knees, the payment audit (double charges
included), a process tree's CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert

from bench import analysis
from bench.events import missing
from bench.stack import ledger
from bench.system import process_cpu_seconds
from services.payments.models import Base, Payment

T0 = 1_000_000.0


def test_cpu_per_completed_order_sums_the_stack_then_adds_the_log_pipeline() -> None:
    before = {
        "orders": 10.0,
        "rabbitmq": 5.0,
        "postgres": 1.0,
        "rsyslog": 2.0,
        "opensearch": 3.0,
        "supervisord": 0.5,
        "vegeta-saga": 0.0,
        "prometheus": 1.0,
        "gone": 1.0,
    }
    after = {
        "orders": 11.0,
        "rabbitmq": 5.5,
        "postgres": 1.25,
        "rsyslog": 2.1,
        "opensearch": 3.2,
        "supervisord": 0.6,
        "vegeta-saga": 0.3,
        "prometheus": 1.5,
        "new-worker": 9.0,
    }
    cpu = analysis.cpu_per_order(before, after, completed=100, seconds=20, background_cores={"orders": 0.01})
    # stack: orders 1 s + rabbitmq 0.5 + postgres 0.25 = 1.75 s over 100 orders
    assert cpu["stack_ms"] == 17.5
    # + rsyslog 0.1 + opensearch 0.2 + supervisord 0.1
    assert cpu["with_log_pipeline_ms"] == pytest.approx(21.5)
    groups = cpu["per_process_ms"]
    assert groups["stack"] == {"orders": 10.0, "rabbitmq": 5.0, "postgres": 2.5}
    assert list(groups["stack"]) == ["orders", "rabbitmq", "postgres"]  # busiest first
    assert groups["log_pipeline"] == {"opensearch": 2.0, "rsyslog": 1.0, "supervisord": 1.0}
    # the load generator and Prometheus are reported, in neither sum
    assert groups["not_counted"] == {"prometheus": 5.0, "vegeta-saga": 3.0}
    # only processes seen at both ends count
    assert "gone" not in cpu["cpu_seconds"] and "new-worker" not in cpu["cpu_seconds"]
    assert cpu["background_stack_cores"] == 0.01 and cpu["background_stack_ms_per_order"] == 2.0


def test_cpu_per_order_without_a_completed_order_is_no_figure() -> None:
    cpu = analysis.cpu_per_order({"orders": 1.0}, {"orders": 2.0}, completed=0, seconds=5)
    assert cpu["stack_ms"] is None and cpu["with_log_pipeline_ms"] is None


def sample(start: float, latency_ms: float, ok: bool = True) -> list:
    return [start, "POST /api/orders", latency_ms, ok, 202 if ok else 503]


def test_accepted_within_the_phase_counts_202s_that_arrived_by_its_end_plus_grace() -> None:
    samples = [
        sample(T0, 50),
        sample(T0 + 1, 50, ok=False),  # refused
        sample(T0 + 9.9, 200),  # arrives 0.1 s after the end: within the grace
        sample(T0 + 9.95, 3000),  # arrives 2.95 s after: late
    ]
    accepted = analysis.accepted_within(samples, offered=5, phase_end=T0 + 10, grace_s=1.0)
    assert accepted == {
        "offered": 5,
        "sent": 4,
        "accepted_in_phase": 2,
        "accepted_late": 1,
        "fraction": 0.4,
        "grace_s": 1.0,
    }


def test_a_step_is_measured_over_the_requests_sent_in_its_window() -> None:
    samples = [sample(T0 + i / 10, 10 + i) for i in range(30)]  # 10/s for 3 s
    samples[25][3] = False
    step = analysis.step_figures(samples, offered_rps=10, measured_from=T0 + 1, seconds=2)
    assert step["requests"] == 20 and step["errors"] == 1
    assert step["achieved_rps"] == 9.5  # 19 served in 2 s
    assert step["p50_ms"] == pytest.approx(29.5) and step["max_ms"] == 39


def test_a_step_holds_with_p99_under_the_limit_and_99_percent_served() -> None:
    step = {"requests": 800, "offered_rps": 800, "achieved_rps": 793, "p99_ms": 49.9}
    assert analysis.holds(step, 50)
    assert not analysis.holds({**step, "p99_ms": 50.0}, 50)
    assert not analysis.holds({**step, "achieved_rps": 790}, 50)  # under 99% of the offered rate
    assert not analysis.holds({**step, "requests": 0, "p99_ms": None}, 50)


def test_the_knee_is_the_highest_step_that_holds() -> None:
    steps = [
        {"requests": 100, "offered_rps": 200, "achieved_rps": 200, "p99_ms": 20},
        {"requests": 100, "offered_rps": 400, "achieved_rps": 400, "p99_ms": 45},
        {"requests": 100, "offered_rps": 800, "achieved_rps": 800, "p99_ms": 70},
        {"requests": 100, "offered_rps": 1000, "achieved_rps": 700, "p99_ms": 30},
    ]
    assert analysis.knee(steps, 50) == {"achieved_rps": 400, "offered_rps": 400, "p99_ms": 45}
    assert analysis.knee(steps, 100)["offered_rps"] == 800
    assert analysis.knee(steps, 10) is None


def order(status: str, total: int = 500) -> dict:
    return {"status": status, "total_cents": total}


def charge(status: str, amount: int = 500) -> dict:
    return {"status": status, "amount_cents": amount}


def test_payment_audit_passes_one_capture_per_delivered_order_and_none_kept_otherwise() -> None:
    orders = {
        1: order("DELIVERED"),
        2: order("REJECTED"),
        3: order("CANCELLED"),
        4: order("REJECTED"),
        5: order("PENDING"),
    }
    ledger = {1: [charge("CAPTURED")], 2: [charge("DECLINED")], 3: [charge("REFUNDED")], 4: [], 5: []}
    audit = analysis.payment_audit(orders, ledger)
    assert audit["ok"] and audit["double_charged"] == 0
    assert audit["orders_checked"] == 4  # the PENDING one is stuck, not a payment question
    assert audit["payments_by_status"] == {"CAPTURED": 1, "DECLINED": 1, "REFUNDED": 1, "none": 1}


def test_a_second_charge_of_an_order_is_detected() -> None:
    orders = {1: order("DELIVERED"), 2: order("DELIVERED"), 3: order("CANCELLED")}
    ledger = {
        1: [charge("CAPTURED")],
        2: [charge("CAPTURED"), charge("CAPTURED")],
        3: [charge("REFUNDED")] * 2,
    }
    audit = analysis.payment_audit(orders, ledger)
    assert audit["double_charged"] == 2 and audit["double_charged_ids"] == [2, 3]
    assert not audit["ok"]


def test_charges_without_delivery_missing_captures_and_wrong_amounts_fail_the_audit() -> None:
    orders = {1: order("REJECTED"), 2: order("DELIVERED"), 3: order("DELIVERED", total=700)}
    ledger = {1: [charge("CAPTURED")], 2: [charge("DECLINED")], 3: [charge("CAPTURED", amount=500)]}
    audit = analysis.payment_audit(orders, ledger)
    assert audit["captured_not_delivered"] == [1]
    assert audit["delivered_not_captured"] == [2]
    assert audit["wrong_amount"] == [3]
    assert audit["double_charged"] == 0 and not audit["ok"]


def test_an_unreadable_ledger_is_unchecked_not_passed() -> None:
    audit = analysis.payment_audit({1: order("DELIVERED")}, None)
    assert audit == {"checked": False, "double_charged": None, "ok": False}


def test_a_process_tree_includes_the_cpu_of_children_that_ended() -> None:
    import os

    before_self = process_cpu_seconds(os.getpid())
    before_tree = process_cpu_seconds(os.getpid(), tree=True)
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    grown_tree = process_cpu_seconds(os.getpid(), tree=True) - before_tree
    grown_self = process_cpu_seconds(os.getpid()) - before_self
    assert grown_tree - grown_self >= 0.25
    assert process_cpu_seconds(2**22 + 12345) is None


def test_an_emitted_event_missing_from_kafka_is_counted_per_source() -> None:
    emitted = {"orders": {"e1", "e2", "e3"}, "payments": {"p1"}, "cart": set()}
    result = missing(emitted, in_kafka={"e1", "e3", "p1", "x9"})  # x9: written twice or by another run
    assert result["sources"] == {
        "orders": {"emitted": 3, "missing": 1},
        "payments": {"emitted": 1, "missing": 0},
        "cart": {"emitted": 0, "missing": 0},
    }
    assert result["emitted"] == 4 and result["missing"] == 1 and result["missing_ids"] == ["e2"]
    assert missing(emitted, {"e1", "e2", "e3", "p1"})["missing"] == 0


def test_the_ledger_is_read_from_the_payments_schema_with_every_row_of_an_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'payments.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for order_id, status in ((1, "CAPTURED"), (2, "DECLINED"), (9, "CAPTURED")):
            connection.execute(
                insert(Payment).values(
                    order_id=order_id,
                    customer_id=5,
                    amount_cents=700,
                    currency="USD",
                    status=status,
                    processor_reference=f"sim_{order_id}",
                )
            )
    engine.dispose()
    rows = ledger(url, [1, 2, 3, *range(100, 1200)])  # more ids than one query takes
    assert rows[1] == [{"status": "CAPTURED", "amount_cents": 700}]
    assert rows[2] == [{"status": "DECLINED", "amount_cents": 700}]
    assert rows[3] == [] and 9 not in rows and len(rows) == 1103
