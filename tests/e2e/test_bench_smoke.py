"""`make bench` in its smoke size against the test stack: the report is produced and well-formed,
and every order the run placed reached a final state (none lost, none stuck).

It asserts nothing about speed: figures from a 20-second run on the test stack, with its payment
latency and rate limits, mean nothing. The phases that are checked stay under the test stack's rate
limits (RATE_LIMIT_AUTH 30 per 5 s per address: 3 + 4 registrations and logins plus the admin's
login; RATE_LIMIT_API 300 per 5 s per user or address: single-digit rates). The one exception is
wrk's one-second run against GET /api/products/<id> (one connection, anonymous): served from the
gateway's product cache it may pass 300 requests in that second and get 429s, which only count as
that floor's errors; the next anonymous requests (the knee) come more than 20 s later.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

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


def test_bench_smoke_run_reports_and_loses_no_order(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STACK_DIR": str(STACK_DIR),
        "STACK_VHOST": VHOST,
        "PYTHONPATH": str(ROOT),
        "GATEWAY_URL": os.environ.get("GATEWAY_URL", "http://localhost:18080"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "bench", *SMOKE, "--results-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    (json_file,) = tmp_path.glob("*.json")
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

    assert result["saga_phase"]["steps"][0]["requests"] > 0
    assert result["timeseries"] and result["load_series"]
    assert len(result["headline"]["targets"]) == 4
    assert all(target["met"] in (True, False) for target in result["headline"]["targets"])

    orders = result["orders"]
    assert orders["accepted"] > 0
    assert orders["lost"] == 0, orders["lost_ids"]
    assert orders["stuck"] == 0, orders["stuck_ids"]
    saga = orders["saga_latency_by_phase"]["saga"]
    assert saga["to_final_state"]["count"] == saga["accepted"]

    assert summary.startswith(f"# Benchmark {result['run_id']}")
    assert f"lost {orders['lost']}, stuck {orders['stuck']}" in summary
