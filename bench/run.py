"""The benchmark run: floors, the realistic mix, the knees, the steady saga load, the order audit.

Phases (``--phases``, default all, in this order):

* ``floors``  bare Flask "hello" (wrk), the gateway's GET /api/products/<id> and /health with the same
  wrk command, raw AMQP request/reply, Nameko RPC through the gateway's pooled client;
* ``mix``     locust: every user registers and logs in, then browses 60 / detail 15 / cart 10 /
  order 10 / status 5, ramped at --spawn-rate for --duration seconds;
* ``knee``    locust at stepped constant rates, GET /api/products/<id> then POST /api/orders, until
  a step's p99 reaches 100 ms (or it falls behind the offered rate);
* ``saga``    POST /api/orders at a steady --saga-rate for --saga-seconds;
* ``profile`` (only with --profile) py-spy on every stack process under load, after the measured phases;

then every order the run placed is followed to a final state (``--drain-timeout``) and counted:
lost (accepted but unknown to the orders service) and stuck (not final in time) must be 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import analysis, floors, profiling, report
from bench.stack import ROOT, Api, Stack, ready
from bench.system import Sampler, describe_machine

PHASES = ("floors", "mix", "knee", "saga")
GET_DETAIL = "GET /api/products/<id>"
POST_ORDER = "POST /api/orders"


class Run:
    def __init__(self, args: Any, stack: Stack):
        self.args = args
        self.stack = stack
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_dir = ROOT / "var" / "bench-runs" / self.run_id
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.sampler = Sampler().start()
        self.t0 = time.time()
        self.api = Api(stack.gateway_url)
        self.accepted: list[list] = []  # [order id, accepted epoch, customer id, phase]
        self.customers: set[int] = set()
        self.series: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}

    def log(self, message: str) -> None:
        print(f"[bench] {time.time() - self.t0:6.1f}s {message}", flush=True)

    @contextmanager
    def measured(self, into: dict[str, Any]) -> Any:
        """Store the load average and CPU use of the block's window with its figures."""
        self.rewatch(into)
        started = time.time()
        yield
        into["load"] = self.sampler.window(started, time.time())

    def rewatch(self, figure: dict[str, Any]) -> None:
        """Follow processes that restarted (the broker is shared: other stacks' tests restart it;
        supervisord restarts a service that died), and say so next to the figure."""
        current = self.stack.processes()
        restarted = {n: pid for n, pid in current.items() if self.processes.get(n, pid) != pid}
        if restarted:
            figure["restarted_before"] = sorted(restarted)
            self.result.setdefault("restarts", []).append(
                {"at_s": round(time.time() - self.t0, 1), "processes": sorted(restarted)}
            )
            self.log(f"restarted since the last look: {', '.join(sorted(restarted))}")
        self.processes = current
        self.sampler.watch(current)

    # ------------------------------------------------------------------ set-up

    def prepare(self) -> None:
        processes = self.stack.processes()
        self.processes = processes
        self.sampler.watch(processes)
        if not self.stack.admin_password:
            raise SystemExit("no admin password: set ADMIN_PASSWORD or STACK_DIR (secrets/admin_password)")
        self.admin = self.api.login(self.stack.admin_email, self.stack.admin_password)["access_token"]
        self.products = self.api.bench_products(self.admin)
        self.log(
            f"{len(self.products)} bench products restocked; registering {self.args.customers} customers"
        )
        pool = [self.api.customer("pool") for _ in range(self.args.customers)]
        self.customers |= {c["id"] for c in pool}
        self.customers_file = self.run_dir / "customers.json"
        self.customers_file.write_text(json.dumps([{"id": c["id"], "token": c["token"]} for c in pool]))
        self.result.update(
            {
                "run_id": self.run_id,
                "started_at": datetime.fromtimestamp(self.t0, UTC).isoformat(),
                "machine": describe_machine(ROOT),
                "stack": {
                    "gateway_url": self.stack.gateway_url,
                    "amqp_vhost": self.stack.amqp_uri.rsplit("/", 1)[-1],
                    "stack_dir": str(self.stack.stack_dir),
                    "settings": self.stack.settings(processes),
                },
                "settings": {k: v for k, v in vars(self.args).items()},
                "raw_records": str(self.run_dir.relative_to(ROOT)),
                "shared_machine_note": "the machine is shared: read each figure with its load",
            }
        )

    def wait_for_load(self) -> None:
        """Wait (polling every 30 s) until the 1-minute load average is below --wait-for-load, at most
        --wait-for-load-timeout seconds; the result records how long and whether it got there."""
        threshold, timeout = self.args.wait_for_load, self.args.wait_for_load_timeout
        if threshold <= 0:
            return
        started = time.monotonic()
        load1 = os.getloadavg()[0]
        while load1 >= threshold and time.monotonic() - started < timeout:
            self.log(f"load average {load1:.2f} >= {threshold}: waiting (up to {timeout:.0f}s in all)")
            time.sleep(30)
            load1 = os.getloadavg()[0]
        reached = load1 < threshold
        self.result["load_wait"] = {
            "threshold": threshold,
            "waited_s": round(time.monotonic() - started, 1),
            "load1": round(load1, 2),
            "reached": reached,
        }
        if not reached:
            self.log(f"load average still {load1:.2f} after {timeout:.0f}s: measuring anyway")

    # ------------------------------------------------------------------ locust

    def locust(
        self,
        name: str,
        locustfile: str,
        user_class: str,
        extra: list[str],
        env: dict[str, str],
        timeout: float,
    ) -> dict[str, Any]:
        out = self.run_dir / f"{name}.json"
        command = [
            str(ROOT / ".venv/bin/locust"),
            "-f",
            str(ROOT / "bench" / locustfile),
            "--headless",
            "-H",
            self.stack.gateway_url,
            "--loglevel",
            "WARNING",
            "--only-summary",
            "--stop-timeout",
            "10",
            "--exit-code-on-error",
            "0",
            *extra,
            user_class,
        ]
        full_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_OUT": str(out),
            "BENCH_PRODUCTS": json.dumps(self.products),
            "BENCH_CUSTOMERS": str(self.customers_file),
            **env,
        }
        with open(self.run_dir / f"{name}.log", "w") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=full_env)
            self.sampler.watch({"locust": proc.pid})
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=30)
        if not out.is_file():
            raise RuntimeError(f"locust ({name}) wrote no results; see {self.run_dir / (name + '.log')}")
        data = json.loads(out.read_text())
        self.accepted += [[*order, name] for order in data["orders"]]
        self.customers |= set(data["customers"])
        if data["samples"]:
            self.series += analysis.time_series(data["samples"], name, self.t0)
        return data

    def rate_steps(
        self,
        name: str,
        user_class: str,
        endpoint: str,
        rates: list[float],
        step_seconds: float,
        warmup: float,
        per_user_rate: float,
        stop_p99_ms: float,
    ) -> dict[str, Any]:
        env = {
            "BENCH_RATES": ",".join(str(r) for r in rates),
            "BENCH_STEP_SECONDS": str(step_seconds),
            "BENCH_WARMUP_SECONDS": str(warmup),
            "BENCH_PER_USER_RATE": str(per_user_rate),
            "BENCH_STOP_P99_MS": str(stop_p99_ms),
            "BENCH_ENDPOINT": endpoint,
        }
        data = self.locust(
            name,
            "locust_rate.py",
            user_class,
            [],
            env,
            timeout=len(rates) * (step_seconds + warmup + 3) + 120,
        )
        steps = analysis.step_table(data["steps"], data["samples"], endpoint)
        for step in steps:
            step["load"] = self.sampler.window(step["started"], step["ended"])
            step["cpu_ms_per_request"] = cpu_per_request(step["load"], step["achieved_rps"])
        return {
            "steps": steps,
            "endpoints": analysis.endpoint_table(data["samples"]),
            "orders_accepted": len(data["orders"]),
        }

    # ------------------------------------------------------------------ phases

    def floors(self) -> None:
        a = self.args
        out: dict[str, Any] = {}
        self.log("floor: bare Flask hello under gateway/gunicorn_conf.py (wrk)")
        with self.measured(out.setdefault("flask_hello", {})):
            out["flask_hello"].update(
                floors.flask_hello(self.run_dir, a.floor_seconds, a.floor_connections, self.sampler.watch)
            )
        self.log("gateway: GET /api/products/<id> and /health with the same wrk command")
        for key, path in (
            ("gateway_product_detail", f"/api/products/{self.products[0]}"),
            ("gateway_health", "/health"),
        ):
            with self.measured(out.setdefault(key, {})):
                out[key].update(
                    floors.wrk(self.stack.gateway_url + path, a.floor_seconds, a.floor_connections)
                )
        self.log(f"floor: raw AMQP request/reply x{a.rtt_calls}")
        with self.measured(out.setdefault("amqp_round_trip", {})):
            out["amqp_round_trip"].update(
                floors.amqp_round_trip(self.stack.amqp_uri, self.run_dir, a.rtt_calls)
            )
        self.log(f"floor: Nameko RPC through gateway.rpc.RpcPool x{a.rtt_calls}")
        with self.measured(out.setdefault("nameko_round_trip", {})):
            out["nameko_round_trip"].update(
                floors.nameko_round_trip(self.stack.amqp_uri, self.run_dir, a.rtt_calls, self.products[0])
            )
        self.result["floors"] = out

    def mix(self) -> None:
        a = self.args
        self.log(f"mix: {a.users} users, +{a.spawn_rate}/s, {a.duration}s")
        out: dict[str, Any] = {"users": a.users, "spawn_rate": a.spawn_rate, "duration_s": a.duration}
        with self.measured(out):
            data = self.locust(
                "mix",
                "locust_mix.py",
                "MixUser",
                ["-u", str(a.users), "-r", str(a.spawn_rate), "-t", f"{a.duration}s"],
                {"BENCH_WAIT_MIN": str(a.wait_min), "BENCH_WAIT_MAX": str(a.wait_max)},
                timeout=a.duration + 180,
            )
        out["endpoints"] = analysis.endpoint_table(data["samples"])
        out["orders_accepted"] = len(data["orders"])
        out["users_registered"] = len(data["customers"])
        out["user_errors"] = data["user_errors"]
        self.result["mix"] = out

    def knee(self) -> None:
        a = self.args
        out: dict[str, Any] = {}
        for endpoint, user_class, rates, per_user in (
            (GET_DETAIL, "ProductDetailUser", a.knee_get_rates, a.knee_get_per_user_rate),
            (POST_ORDER, "PlaceOrderUser", a.knee_post_rates, a.knee_post_per_user_rate),
        ):
            self.settle(f"before knee {endpoint}")
            self.log(f"knee: {endpoint} at {rates} req/s, {a.knee_step_seconds}s per step")
            name = "knee-get" if endpoint == GET_DETAIL else "knee-post"
            with self.measured(out.setdefault(endpoint, {})):
                out[endpoint].update(
                    self.rate_steps(
                        name,
                        user_class,
                        endpoint,
                        rates,
                        a.knee_step_seconds,
                        a.knee_warmup_seconds,
                        per_user,
                        100,
                    )
                )
            steps = out[endpoint]["steps"]
            out[endpoint]["cpu_cost"] = analysis.cpu_cost(steps, os.cpu_count() or 1)
            out[endpoint]["knee_p99_under_100ms"] = analysis.knee(steps, 100)
            out[endpoint]["knee_p99_under_50ms"] = analysis.knee(steps, 50)
        self.result["knee"] = out

    def saga(self) -> None:
        a = self.args
        self.settle("before the saga phase")
        self.log(f"saga: POST /api/orders at a steady {a.saga_rate}/s for {a.saga_seconds}s")
        out: dict[str, Any] = {"offered_rps": a.saga_rate, "seconds": a.saga_seconds}
        with self.measured(out):
            out.update(
                self.rate_steps(
                    "saga",
                    "PlaceOrderUser",
                    POST_ORDER,
                    [a.saga_rate],
                    a.saga_seconds,
                    0,
                    a.knee_post_per_user_rate,
                    0,
                )
            )
        self.result["saga_phase"] = out

    def profile(self) -> None:
        """py-spy on every stack process while one endpoint is loaded at a fixed rate."""
        a = self.args
        get_steps = self.result.get("knee", {}).get(GET_DETAIL, {}).get("steps") or []
        get_rate = get_steps[-1]["offered_rps"] if get_steps else a.knee_get_rates[0]
        out: dict[str, Any] = {}
        for endpoint, user_class, rate, per_user in (
            (GET_DETAIL, "ProductDetailUser", get_rate, a.knee_get_per_user_rate),
            (POST_ORDER, "PlaceOrderUser", a.saga_rate, a.knee_post_per_user_rate),
        ):
            self.settle(f"before profiling {endpoint}")
            self.log(
                f"profile: py-spy on the stack while {endpoint} runs at {rate}/s for {a.profile_seconds}s"
            )
            name = "profile-get" if endpoint == GET_DETAIL else "profile-post"
            recording = profiling.start(self.stack.processes(), a.profile_seconds + 2, self.run_dir / name)
            entry: dict[str, Any] = {"offered_rps": rate}
            with self.measured(entry):
                entry.update(
                    self.rate_steps(name, user_class, endpoint, [rate], a.profile_seconds, 0, per_user, 0)
                )
            entry["profiles"] = profiling.finish(recording)
            out[endpoint] = entry
        self.result["profile"] = out

    # ------------------------------------------------------------------ orders

    def settle(self, label: str) -> None:
        """Wait until no order of this run is still under way (bounded by --drain-timeout)."""
        started = time.monotonic()
        remaining = self.api.unfinished_count(self.admin, self.customers)
        while remaining and time.monotonic() - started < self.args.drain_timeout:
            time.sleep(1)
            remaining = self.api.unfinished_count(self.admin, self.customers)
        waited = round(time.monotonic() - started, 1)
        self.result.setdefault("settling", []).append(
            {"when": label, "waited_s": waited, "unfinished": remaining}
        )
        if waited > 1:
            self.log(f"{label}: waited {waited}s for the orders under way to finish ({remaining} left)")

    def audit(self) -> None:
        self.log(f"audit: following {len(self.accepted)} accepted orders to a final state")
        self.settle("final audit")
        orders: dict[int, dict[str, Any]] = {}
        for customer_id in sorted(self.customers):
            for order in self.api.orders_of(self.admin, customer_id):
                orders[order["id"]] = order
        accepted_ids = {row[0] for row in self.accepted}
        lost = sorted(accepted_ids - orders.keys())
        stuck = sorted(o["id"] for o in orders.values() if o["status"] not in analysis.FINAL)
        by_phase: dict[str, Any] = {}
        for phase in sorted({row[3] for row in self.accepted}):
            rows = [row[:3] for row in self.accepted if row[3] == phase]
            by_phase[phase] = {"accepted": len(rows), **analysis.saga_latencies(rows, orders)}
        self.result["orders"] = {
            "accepted": len(accepted_ids),
            "created_for_run_customers": len(orders),
            # created without the client seeing a 202 (its request failed or timed out): followed all the same
            "unacknowledged": len(orders.keys() - accepted_ids),
            "lost": len(lost),
            "lost_ids": lost[:100],
            "stuck": len(stuck),
            "stuck_ids": stuck[:100],
            "saga_latency_by_phase": by_phase,
        }

    # ------------------------------------------------------------------ all

    def execute(self) -> int:
        self.prepare()
        self.wait_for_load()
        steps: dict[str, Callable[[], None]] = {
            "floors": self.floors,
            "mix": self.mix,
            "knee": self.knee,
            "saga": self.saga,
        }
        for phase in self.args.phases:
            steps[phase]()
        if self.args.profile:
            self.profile()
        self.audit()
        self.result["finished_at"] = datetime.now(UTC).isoformat()
        self.result["duration_s"] = round(time.time() - self.t0, 1)
        self.sampler.stop()
        self.result["timeseries"] = sorted(self.series, key=lambda s: s["t"])
        self.result["load_series"] = [
            {"t": round(s.t - self.t0, 1), "load1": s.load1, "cpu_busy": s.cpu_busy}
            for s in self.sampler.samples
        ]
        self.result["headline"] = report.headline(self.result)
        paths = report.write(self.result, Path(self.args.results_dir), self.args.docs or None)
        for path in paths:
            self.log(f"wrote {path}")
        print(paths[1].read_text())
        orders = self.result["orders"]
        return 1 if orders["lost"] or orders["stuck"] else 0


def cpu_per_request(load: dict[str, Any], rps: float) -> dict[str, float]:
    """CPU milliseconds each stack process spent per request: unlike req/s, this hardly depends on how
    much CPU other workloads left the stack, and 1000 / (ms of a one-core process) bounds its rate."""
    if not rps:
        return {}
    per_process = {
        name: round(cores * 1000 / rps, 2)
        for name, cores in load["top_processes"].items()
        if not name.startswith(("locust", "hello"))
    }
    return {"stack": round(sum(per_process.values()), 2), **per_process}


def main(args: Any) -> int:
    stack = Stack.from_env()
    if not ready(stack.gateway_url):
        print(f"[bench] no ready gateway at {stack.gateway_url}; `make bench` (scripts/bench.sh) starts one")
        return 2
    return Run(args, stack).execute()
