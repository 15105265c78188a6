"""`make bench` in its smoke size against the test stack: scripts/bench.sh installs what it needs
(wrk, vegeta) and measures the stack already running; the report is produced and well-formed, every
target of issue 12 is judged, and every order the run placed reached a final state (none lost, none
stuck, none charged twice).

It asserts nothing about speed: figures from a short run on the test stack, with its payment
latency and rate limits, mean nothing. The phases that are checked stay under the test stack's rate
limits (RATE_LIMIT_AUTH 10 per 5 s per address: 3 + 4 registrations and logins plus the admin's
login, and bench/stack.py waits out a 429; RATE_LIMIT_API 100 per 5 s per user or address:
single-digit rates; the audit's payment reads are one per order, about 60). The one exception is
wrk's one-second run against GET /api/products/<id> (one connection, anonymous): served from the
gateway's product cache it may pass 100 requests in that second and get 429s, which only count as
that floor's errors; the next anonymous requests (the knee) come more than 20 s later.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, STACK_DIR, VHOST

SMOKE = [
    "--users",
    "4",
    "--spawn-rate",
    "4",
    "--duration",
    "20",
    "--knee-get-rates",
    "5,10",
    "--knee-post-rates",
    "2,4",
    "--knee-step-seconds",
    "2",
    "--knee-warmup-seconds",
    "1",
    "--saga-rate",
    "4",
    "--saga-seconds",
    "3",
    "--saga-read-rate",
    "2",
    "--background-seconds",
    "1",
    "--floor-seconds",
    "1",
    "--floor-connections",
    "1",
    "--rtt-calls",
    "200",
    "--customers",
    "3",
    "--drain-timeout",
    "120",
    "--docs",
    "",
]
MIX_ENDPOINTS = {
    "POST /auth/register",
    "POST /auth/login",
    "GET /api/products",
    "GET /api/products/<id>",
    "POST /api/orders",
}


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", header[16:24])


def _has_load(entry: dict) -> bool:
    load = entry.get("load") or {}
    return isinstance(load.get("load1_start"), float) and isinstance(load.get("load1_end"), float)


def _cpu_figures(cpu: dict, accepted: int) -> None:
    # every order the phase got a 202 for, and any it created without one
    assert cpu["completed_orders"] >= accepted
    assert cpu["stack_ms"] > 0 and cpu["with_log_pipeline_ms"] >= cpu["stack_ms"]
    groups = cpu["per_process_ms"]
    # every service, the gateway's workers and the broker are in the stack's sum
    assert {"orders", "payments", "inventory", "shipping", "rabbitmq", "redis"} <= set(groups["stack"])
    assert any(name.startswith("gateway-worker-") for name in groups["stack"])
    # the test stack ships its logs: supervisord, the shipper and the search engine are in the second sum
    assert set(groups["log_pipeline"]) == {"supervisord", "rsyslog", "opensearch"}
    assert sum(groups["stack"].values()) == pytest.approx(cpu["stack_ms"], abs=0.1 * len(groups["stack"]))
    assert isinstance(cpu["background_stack_cores"], float)


def _generator(figures: dict) -> None:
    generator = figures["generator"]
    assert generator["command"].startswith("vegeta attack -format=json ")
    assert generator["cpu_seconds"] > 0 and generator["cpu_ms_per_request"] > 0
    assert generator["report"]["requests"] >= figures["requests"] > 0
    assert set(generator["report"]["latency_ms"]) >= {"50th", "99th", "max"}


def test_bench_smoke_run_reports_and_loses_no_order(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STACK_DIR": str(STACK_DIR),
        "STACK_VHOST": VHOST,
        "PYTHONPATH": str(ROOT),
        "GATEWAY_URL": os.environ.get("GATEWAY_URL", "http://localhost:18080"),
        "BENCH_START_STACK": "0",
    }
    run = subprocess.run(
        ["bash", str(ROOT / "scripts/bench.sh"), *SMOKE, "--results-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    (json_file,) = tmp_path.glob("*.json")
    check_results(json_file)


def check_results(json_file: Path) -> None:
    """What a smoke run must have written (also runnable on a kept run's JSON)."""
    result = json.loads(json_file.read_text())
    stem = json_file.with_suffix("")
    summary = stem.with_suffix(".md").read_text()
    width, height = _png_size(stem.with_suffix(".png"))
    assert width > 500 and height > 500

    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["memory_gib"] > 0
    assert machine["versions"]["locust"] and machine["versions"]["python"]

    floors = result["floors"]
    assert floors["flask_hello"]["rps"] > 0 and floors["gateway_product_detail"]["rps"] > 0
    assert floors["amqp_round_trip"]["count"] == 200 and floors["nameko_round_trip"]["echo"]["count"] == 200
    assert all(_has_load(floors[key]) for key in floors)

    mix = result["mix"]
    assert _has_load(mix) and mix["users_registered"] >= 1
    assert set(mix["endpoints"]) >= MIX_ENDPOINTS
    for figures in mix["endpoints"].values():
        assert {"rps", "p50_ms", "p95_ms", "p99_ms", "error_rate"} <= set(figures)

    for endpoint in ("GET /api/products/<id>", "POST /api/orders"):
        steps = result["knee"][endpoint]["steps"]
        assert steps and all(_has_load(step) and step["requests"] > 0 for step in steps)
        for step in steps:
            _generator(step)
            # the measured window holds the requests vegeta sent in it: rate x seconds on schedule (fewer
            # when a starved machine makes it fall behind)
            assert 0 < step["requests"] <= round(step["offered_rps"] * 2)

    saga = result["saga_phase"]
    (step,) = saga["steps"]
    assert 0 < step["requests"] <= 12
    _generator(step)
    accepted = saga["accepted"]
    assert accepted["offered"] == 12 and 0 <= accepted["fraction"] <= 1
    assert (
        accepted["accepted_in_phase"] + accepted["accepted_late"]
        == saga["steps"][0]["requests"] - step["errors"]
    )
    reads = saga["reads"]
    assert 0 < reads["requests"] <= 6 and reads["orders_read_from"] > 0 and reads["p99_ms"] > 0
    _generator(reads)
    orders = result["orders"]
    saga_orders = orders["saga_latency_by_phase"]["saga"]
    _cpu_figures(saga["cpu_per_completed_order"], saga_orders["accepted"])

    assert result["timeseries"] and result["load_series"]
    targets = result["headline"]["targets"]
    assert len(targets) == 5
    assert all(target["met"] in (True, False) and target["measured"] != "not run" for target in targets)
    assert result["headline"]["failures"] == []

    assert orders["accepted"] > 0
    assert orders["lost"] == 0, orders["lost_ids"]
    assert orders["stuck"] == 0, orders["stuck_ids"]
    assert orders["more_orders_than_requests"] == 0
    payments = orders["payments"]
    assert payments["ok"], payments
    assert payments["double_charged"] == 0
    assert payments["orders_checked"] == orders["created_for_run_customers"]
    assert payments["payments_by_status"].get("CAPTURED", 0) > 0
    assert saga_orders["to_final_state"]["count"] == saga_orders["accepted"]

    assert summary.startswith(f"# Benchmark {result['run_id']}")
    assert f"lost {orders['lost']}, stuck {orders['stuck']}" in summary
    assert "## CPU per completed order (saga phase)" in summary
    assert "vegeta attack -format=json" in summary
