"""bench.report's judgement: the five targets of issue 12 and what fails a run, on synthetic results."""

from __future__ import annotations

import copy
from typing import Any

from bench import report

GET, POST = "GET /api/products/<id>", "POST /api/orders"
LOAD = {"load1_start": 1.0, "load1_end": 1.5}


def step(offered: float, achieved: float, p99: float) -> dict[str, Any]:
    return {
        "offered_rps": offered,
        "achieved_rps": achieved,
        "p99_ms": p99,
        "requests": int(offered * 8),
        "load": LOAD,
        "generator": {"cpu_ms_per_request": 0.05, "command": "vegeta attack ..."},
    }


def passing() -> dict[str, Any]:
    return {
        "saga_phase": {
            "offered_rps": 50,
            "seconds": 60,
            "load": LOAD,
            "accepted": {"offered": 3000, "accepted_in_phase": 2950, "accepted_late": 50, "fraction": 0.9833},
            "reads": {"offered_rps": 10, "achieved_rps": 10.0, "requests": 600, "p99_ms": 80.0},
            "cpu_per_completed_order": {
                "stack_ms": 24.9,
                "with_log_pipeline_ms": 34.9,
                "completed_orders": 3000,
                "per_process_ms": {"stack": {"orders": 10.0}, "log_pipeline": {"rsyslog": 1.0}},
            },
        },
        "knee": {
            GET: {
                "load": LOAD,
                "steps": [step(800, 800, 40), step(1000, 900, 60)],
                "knee_p99_under_50ms": {"offered_rps": 800, "achieved_rps": 800, "p99_ms": 40},
            },
            POST: {
                "load": LOAD,
                "steps": [step(50, 50, 90)],
                "knee_p99_under_100ms": {"offered_rps": 50, "achieved_rps": 50, "p99_ms": 90},
            },
        },
        "orders": {
            "lost": 0,
            "stuck": 0,
            "more_orders_than_requests": 0,
            "payments": {
                "checked": True,
                "double_charged": 0,
                "delivered_not_captured": [],
                "captured_not_delivered": [],
                "wrong_amount": [],
            },
            "saga_latency_by_phase": {"saga": {"to_final_state": {"p99_ms": 999.0}}},
        },
    }


def verdicts(result: dict[str, Any]) -> list[bool | None]:
    return [t["met"] for t in report.targets(result)]


def changed(path: tuple, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(passing())
    node = result
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return result


def test_a_run_within_every_bound_meets_all_five_targets() -> None:
    assert verdicts(passing()) == [True] * 5
    assert report.order_failures(passing()) == []


def test_each_bound_is_judged_on_its_own() -> None:
    cpu = ("saga_phase", "cpu_per_completed_order")
    assert verdicts(changed((*cpu, "stack_ms"), 25.1))[0] is False
    assert verdicts(changed((*cpu, "with_log_pipeline_ms"), 35.1))[0] is False
    assert verdicts(changed(("saga_phase", "accepted", "fraction"), 0.979))[1] is False
    assert verdicts(changed(("saga_phase", "offered_rps"), 40))[1] is False
    assert verdicts(changed(("saga_phase", "seconds"), 20))[1] is False
    assert (
        verdicts(changed(("orders", "saga_latency_by_phase", "saga", "to_final_state", "p99_ms"), 1000.0))[1]
        is False
    )
    assert verdicts(changed(("knee", POST, "knee_p99_under_100ms"), None))[2] is False
    assert verdicts(changed(("knee", POST, "knee_p99_under_100ms", "offered_rps"), 25))[2] is False
    assert verdicts(changed(("saga_phase", "reads", "p99_ms"), 100.0))[3] is False
    assert verdicts(changed(("saga_phase", "reads", "achieved_rps"), 9.0))[3] is False  # reads refused
    assert verdicts(changed(("knee", GET, "knee_p99_under_50ms", "offered_rps"), 600))[4] is False


def test_lost_stuck_or_double_charged_orders_fail_the_saga_target_and_the_run() -> None:
    for key, value, words in (
        ("lost", 1, "1 orders lost"),
        ("stuck", 2, "2 orders stuck"),
        ("more_orders_than_requests", 1, "more orders than requests"),
    ):
        result = changed(("orders", key), value)
        assert verdicts(result)[1] is False
        assert any(words in failure for failure in report.order_failures(result))
    twice = changed(("orders", "payments", "double_charged"), 1)
    assert verdicts(twice)[1] is False and report.order_failures(twice) == ["1 orders charged more than once"]
    unchecked = changed(("orders", "payments"), {"checked": False, "double_charged": None, "ok": False})
    assert verdicts(unchecked)[1] is False
    assert "payments not checked" in report.order_failures(unchecked)[0]
    lost_event = {**passing(), "analytics": {"missing": 3}}
    assert report.order_failures(lost_event) == ["3 events emitted but not in Kafka"]


def test_phases_not_run_are_not_judged() -> None:
    assert verdicts({"orders": {}}) == [None] * 5
