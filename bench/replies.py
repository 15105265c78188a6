"""What the platform's RPC replies cost against nameko's default ones, side by side.

``python -m bench.replies [--calls N]`` (AMQP_URI: the stack's vhost, e.g.
pyamqp://guest:guest@localhost:5672/bench) runs two echo services, each in its own
``nameko run`` process like the platform's services: ``bench_echo`` with the platform's
``rpc`` entrypoint (transient replies, no publisher confirm) and
``bench_echo_nameko_default`` with nameko's own (persistent, confirmed replies). The
gateway's pooled client then calls them in alternating blocks of 100, so both see the same
machine load; per service it prints the latency and the CPU milliseconds per call of the
service process and of the broker (from /proc: hardly affected by what else runs).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.floors import VENV_BIN, process, wait_until
from bench.stack import ROOT, oldest
from bench.stats import summarize
from bench.system import process_cpu_seconds

SERVICES = {"bench_echo": "BenchEcho", "bench_echo_nameko_default": "NamekoDefaultEcho"}
BLOCK = 100


def measure(amqp_uri: str, calls: int, log_dir: Path) -> dict[str, Any]:
    from gateway.rpc import RpcPool  # imports nameko (and so eventlet)

    env = {"AMQP_URI": amqp_uri, "LOGSTASH_HOST": ""}
    pool = RpcPool(amqp_uri, size=1, timeout=5)
    broker = oldest("beam.smp") or 0
    latencies: dict[str, list[float]] = {name: [] for name in SERVICES}
    cpu: dict[str, float] = dict.fromkeys(SERVICES, 0.0)
    broker_cpu: dict[str, float] = dict.fromkeys(SERVICES, 0.0)
    command = [str(VENV_BIN / "nameko"), "run", "--config", str(ROOT / "config.yml")]
    try:
        with ExitStack() as running:
            pids = {
                name: running.enter_context(
                    process([*command, f"bench.echo_service:{cls}"], log_dir / f"replies-{name}.log", env)
                ).pid
                for name, cls in SERVICES.items()
            }
            wait_until(lambda: min(pool.consumers(list(SERVICES)).values()) > 0, 60, "the echo services")
            for _ in range(BLOCK):  # warm-up
                for name in SERVICES:
                    pool.call(name, "ping", (None,), {}, correlation_id="bench-replies", timeout=5)
            for block in range(max(calls // BLOCK, 1)):
                for name in list(SERVICES)[:: 1 if block % 2 == 0 else -1]:
                    service_before = process_cpu_seconds(pids[name]) or 0.0
                    broker_before = process_cpu_seconds(broker) or 0.0
                    for _ in range(BLOCK):
                        started = time.perf_counter()
                        pool.call(name, "ping", (None,), {}, correlation_id="bench-replies", timeout=5)
                        latencies[name].append((time.perf_counter() - started) * 1000)
                    cpu[name] += (process_cpu_seconds(pids[name]) or 0.0) - service_before
                    broker_cpu[name] += (process_cpu_seconds(broker) or 0.0) - broker_before
    finally:
        pool.close()
    return {
        name: {
            "entrypoint": "services.common.rpc.rpc" if name == "bench_echo" else "nameko.rpc.rpc",
            **summarize(values),
            "service_cpu_ms_per_call": round(cpu[name] * 1000 / len(values), 3),
            "broker_cpu_ms_per_call": round(broker_cpu[name] * 1000 / len(values), 3),
        }
        for name, values in latencies.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replies",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=2000, help="calls per service")
    args = parser.parse_args()
    amqp_uri = os.environ.get("AMQP_URI", "pyamqp://guest:guest@localhost:5672/bench")
    log_dir = ROOT / "var" / "bench-runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    result = measure(amqp_uri, args.calls, log_dir)
    print(
        json.dumps(
            {"load1_start": round(load_before, 2), "load1_end": round(os.getloadavg()[0], 2), **result},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
