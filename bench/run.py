"""The benchmark run: floors, the realistic mix, the knees, the saga phase, the order audit.

Phases (``--phases``, default all, in this order):

* ``floors``  bare Flask "hello" (wrk), the gateway's GET /api/products/<id> and /health with the same
  wrk command, raw AMQP request/reply, Nameko RPC through the gateway's pooled client;
* ``mix``     locust: every user registers and logs in, then browses 60 / detail 15 / cart 10 /
  order 10 / status 5, ramped at --spawn-rate for --duration seconds;
* ``knee``    vegeta at stepped constant rates, GET /api/products/<id> then POST /api/orders, until
  a step's p99 reaches 100 ms or it serves less than 99% of the offered rate (after three steps);
* ``saga``    POST /api/orders at a steady --saga-rate for --saga-seconds (vegeta) with
  GET /api/orders/<id> of earlier orders at --saga-read-rate beside it; the stack's CPU from its
  first request until every order it placed is final, per completed order;
* ``profile`` (only with --profile) py-spy on every stack process under load, after the measured phases;

then every order the run placed is followed to a final state (``--drain-timeout``) and counted:
lost (accepted but unknown to the orders service), stuck (not final in time) and charged wrongly
(payment_audit: twice, without delivery, or not for a delivery) must be 0; with analytics running,
every event published must have reached Kafka.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from bench import analysis, events, floors, profiling, report, vegeta
from bench.stack import ROOT, Api, Stack, ready
from bench.system import Sampler, describe_machine

PHASES = ("floors", "mix", "knee", "saga")
GET_DETAIL = "GET /api/products/<id>"
POST_ORDER = "POST /api/orders"
GET_ORDER = "GET /api/orders/<id>"
#: the status a request must get to count as served
EXPECTED = {GET_DETAIL: 200, POST_ORDER: 202, GET_ORDER: 200}
#: steps a knee search runs even when an early one fails: the CPU per request is fitted over them
MIN_STEPS = 3
#: a 202 to one of the saga phase's last requests counts as accepted in the phase when it arrives
#: within this long after the phase's end (its own round trip)
ACCEPT_GRACE_S = 1.0


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
        self.order_requests = 0  # POST /api/orders sent, by every phase
        self.customers: set[int] = set()
        self.readable: list[tuple[int, str]] = []  # (order id, its owner's token) for the saga's reads
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
        self.pool = [self.api.customer("pool") for _ in range(self.args.customers)]
        self.customers |= {c["id"] for c in self.pool}
        # before any order of the run: the events it causes are counted from here
        self.events_before = None
        if events.running(processes):
            try:
                self.events_before = events.snapshot(self.stack)
            except (RuntimeError, KafkaError, SQLAlchemyError) as error:
                self.result["analytics"] = {"error": f"cannot count the events: {error}"}
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
                    "cpu_sources": self.stack.describe(processes),
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

    # ------------------------------------------------------------------ load generators

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
        self.order_requests += sum(1 for s in data["samples"] if s[1] == POST_ORDER)
        if data["samples"]:
            self.series += analysis.time_series(data["samples"], name, self.t0)
        return data

    def targets(self, endpoint: str, count: int) -> list[dict[str, Any]]:
        """``count`` requests to ``endpoint``, each a target of its own (vegeta cycles through them)."""
        base = self.stack.gateway_url.rstrip("/")
        if endpoint == GET_DETAIL:
            return [
                vegeta.target("GET", f"{base}/api/products/{random.choice(self.products)}")
                for _ in range(count)
            ]
        if endpoint == GET_ORDER:
            return [
                vegeta.target("GET", f"{base}/api/orders/{order_id}", {"Authorization": f"Bearer {token}"})
                for order_id, token in random.choices(self.readable, k=count)
            ]
        # the pool's customers in turn, each order with its own Idempotency-Key: every request a new order
        return [
            vegeta.target(
                "POST",
                f"{base}/api/orders",
                {"Authorization": f"Bearer {customer['token']}", "Idempotency-Key": uuid.uuid4().hex},
                {"product_id": random.choice(self.products), "quantity": 1},
            )
            for customer in (self.pool[i % len(self.pool)] for i in range(count))
        ]

    def attack(self, name: str, endpoint: str, rate: float, seconds: float) -> vegeta.Attack:
        # one target per request, and a second's worth spare: vegeta never has to reuse one
        count = math.ceil(rate * (seconds + 1))
        attack = vegeta.Attack(
            name,
            self.targets(endpoint, count),
            rate,
            seconds,
            self.run_dir / "vegeta",
            # the order id is in a 202's body; the other bodies are not needed
            max_body=-1 if endpoint == POST_ORDER else 0,
        ).start()
        assert attack.proc is not None
        self.sampler.watch({f"vegeta-{name}": attack.proc.pid})
        return attack

    def collect(self, name: str, endpoint: str, attack: vegeta.Attack) -> tuple[list[list], dict[str, Any]]:
        """An attack's requests as samples (and its accepted orders recorded); vegeta's own figures."""
        finished = attack.finish()
        samples = analysis.samples_of(finished["results"], endpoint, EXPECTED[endpoint])
        if endpoint == POST_ORDER:
            self.accepted += [[*order, name] for order in analysis.accepted_orders(finished["results"])]
            self.order_requests += len(samples)
        if samples:
            self.series += analysis.time_series(samples, name, self.t0)
        return samples, finished["vegeta"]

    def rate_steps(
        self,
        name: str,
        endpoint: str,
        rates: list[float],
        step_seconds: float,
        warmup: float,
        stop_p99_ms: float,
    ) -> dict[str, Any]:
        """Each rate for ``warmup`` + ``step_seconds`` (one vegeta attack), measured over the requests
        sent after the warm-up; after MIN_STEPS steps, stop at the first that does not hold."""
        steps, every = [], []
        for index, rate in enumerate(rates):
            attack = self.attack(f"{name}-{rate:g}", endpoint, rate, warmup + step_seconds)
            samples, generator = self.collect(name, endpoint, attack)
            first = samples[0][0] if samples else attack.started
            # vegeta sends request i at i / rate after its start: a window from half an interval
            # before the first measured one holds exactly rate x seconds of them
            step = analysis.step_figures(samples, rate, first + warmup - 0.5 / rate, step_seconds)
            step["started"] = first
            step["load"] = self.sampler.window(step["measured_from"], step["ended"])
            step["cpu_ms_per_request"] = cpu_per_request(step["load"], step["achieved_rps"])
            step["passed"] = analysis.holds(step, stop_p99_ms) if stop_p99_ms else None
            step["generator"] = generator
            steps.append(step)
            every += samples
            # at least MIN_STEPS even when an early one fails (on a busy machine a low rate can fail
            # too): the CPU cost per request is fitted over the steps
            if stop_p99_ms and not step["passed"] and index + 1 >= MIN_STEPS:
                break
        return {"steps": steps, "endpoints": analysis.endpoint_table(every)}

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
        for endpoint, name, rates in (
            (GET_DETAIL, "knee-get", a.knee_get_rates),
            (POST_ORDER, "knee-post", a.knee_post_rates),
        ):
            self.settle(f"before knee {endpoint}")
            self.log(
                f"knee: {endpoint} at {rates} req/s, {a.knee_warmup_seconds}+{a.knee_step_seconds}s per step"
            )
            with self.measured(out.setdefault(endpoint, {})):
                out[endpoint].update(
                    self.rate_steps(name, endpoint, rates, a.knee_step_seconds, a.knee_warmup_seconds, 100)
                )
            steps = out[endpoint]["steps"]
            out[endpoint]["cpu_cost"] = analysis.cpu_cost(steps, os.cpu_count() or 1)
            out[endpoint]["knee_p99_under_100ms"] = analysis.knee(steps, 100)
            out[endpoint]["knee_p99_under_50ms"] = analysis.knee(steps, 50)
        self.result["knee"] = out

    def readable_orders(self) -> None:
        """Orders of the pool's customers for the saga phase's reads (their owners' tokens); when the
        run has placed none yet, --saga-read-orders are placed now."""
        tokens = {c["id"]: c["token"] for c in self.pool}
        self.readable = [(row[0], tokens[row[2]]) for row in self.accepted if row[2] in tokens][-500:]
        if self.readable:
            return
        for index in range(self.args.saga_read_orders):
            customer = self.pool[index % len(self.pool)]
            order = self.api.json(
                "POST",
                "/api/orders",
                customer["token"],
                expect=202,
                json={"product_id": random.choice(self.products), "quantity": 1},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            self.accepted.append([order["id"], time.time(), customer["id"], "saga-reads-setup"])
            self.order_requests += 1
            self.readable.append((order["id"], customer["token"]))

    def background(self, seconds: float) -> dict[str, float] | None:
        """Cores each watched process uses while nothing is asked of the stack (timers, scrapes)."""
        if seconds <= 0:
            return None
        before = self.sampler.snapshot()
        time.sleep(seconds)
        after = self.sampler.snapshot()
        return {n: round((after[n] - before[n]) / seconds, 4) for n in after if n in before}

    def saga(self) -> None:
        a = self.args
        self.readable_orders()
        self.settle("before the saga phase")
        out: dict[str, Any] = {
            "offered_rps": a.saga_rate,
            "seconds": a.saga_seconds,
            "read_rps": a.saga_read_rate,
        }
        self.rewatch(out)
        background = self.background(a.background_seconds)
        self.log(
            f"saga: POST /api/orders at a steady {a.saga_rate}/s for {a.saga_seconds}s, "
            f"GET /api/orders/<id> at {a.saga_read_rate}/s beside it"
        )
        before, started = self.sampler.snapshot(), time.time()
        first_order = len(self.accepted)
        post = self.attack("saga", POST_ORDER, a.saga_rate, a.saga_seconds)
        reads = (
            self.attack("saga-reads", GET_ORDER, a.saga_read_rate, a.saga_seconds)
            if a.saga_read_rate
            else None
        )
        samples, generator = self.collect("saga", POST_ORDER, post)
        read_samples, read_generator = self.collect("saga-reads", GET_ORDER, reads) if reads else ([], None)
        first = samples[0][0] if samples else started
        phase_end = first + a.saga_seconds
        # half an interval early, as in rate_steps: the window holds every request of the phase
        step = analysis.step_figures(samples, a.saga_rate, first - 0.5 / a.saga_rate, a.saga_seconds)
        step["generator"] = generator
        out["steps"] = [step]
        out["accepted"] = analysis.accepted_within(
            samples, round(a.saga_rate * a.saga_seconds), phase_end, ACCEPT_GRACE_S
        )
        if reads:
            out["reads"] = {
                **analysis.step_figures(
                    read_samples,
                    a.saga_read_rate,
                    (read_samples[0][0] if read_samples else first) - 0.5 / a.saga_read_rate,
                    a.saga_seconds,
                ),
                "orders_read_from": len(self.readable),
                "generator": read_generator,
            }
        # until every order of the phase is final: the CPU of its whole saga, not just of its 202
        self.settle("after the saga phase")
        after, ended = self.sampler.snapshot(), time.time()
        out["load"] = self.sampler.window(started, ended)
        # the phase's orders: those it got a 202 for, and any created in its window without one
        # (a request that failed on the client): the window's CPU worked for both
        ids = {row[0] for row in self.accepted[first_order:]}
        statuses = {
            o["id"]: o["status"]
            for c in self.pool
            for o in self.api.orders_of(self.admin, c["id"])
            if o["id"] in ids or started <= datetime.fromisoformat(o["created_at"]).timestamp() <= ended
        }
        completed = sum(1 for status in statuses.values() if status in analysis.FINAL)
        out["cpu_per_completed_order"] = analysis.cpu_per_order(
            before, after, completed, ended - started, background
        )
        out["cpu_per_completed_order"]["background_window_s"] = a.background_seconds
        self.result["saga_phase"] = out

    def profile(self) -> None:
        """py-spy on every stack process while one endpoint is loaded at a fixed rate."""
        a = self.args
        get_steps = self.result.get("knee", {}).get(GET_DETAIL, {}).get("steps") or []
        get_rate = get_steps[-1]["offered_rps"] if get_steps else a.knee_get_rates[0]
        out: dict[str, Any] = {}
        for endpoint, name, rate in (
            (GET_DETAIL, "profile-get", get_rate),
            (POST_ORDER, "profile-post", a.saga_rate),
        ):
            self.settle(f"before profiling {endpoint}")
            self.log(
                f"profile: py-spy on the stack while {endpoint} runs at {rate}/s for {a.profile_seconds}s"
            )
            recording = profiling.start(
                self.stack.platform_processes(), a.profile_seconds + 2, self.run_dir / name
            )
            entry: dict[str, Any] = {"offered_rps": rate}
            with self.measured(entry):
                entry.update(self.rate_steps(name, endpoint, [rate], a.profile_seconds, 0, 0))
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
        payments = analysis.payment_audit(orders, self.stack.payments_of(sorted(orders)))
        self.result["orders"] = {
            "accepted": len(accepted_ids),
            "order_requests": self.order_requests,
            "created_for_run_customers": len(orders),
            # created without the client seeing a 202 (its request failed or timed out): followed all the same
            "unacknowledged": len(orders.keys() - accepted_ids),
            # each request carries an Idempotency-Key of its own: more orders than requests is a duplicate
            "more_orders_than_requests": max(len(orders) - self.order_requests, 0),
            "lost": len(lost),
            "lost_ids": lost[:100],
            "stuck": len(stuck),
            "stuck_ids": stuck[:100],
            "payments": payments,
            "saga_latency_by_phase": by_phase,
        }
        if self.events_before is not None:
            self.log("audit: every event published reached Kafka?")
            try:
                self.result["analytics"] = events.compare(self.stack, self.events_before)
            except (RuntimeError, KafkaError, SQLAlchemyError) as error:
                self.result["analytics"] = {"error": f"cannot count the events: {error}"}

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
        return 1 if report.order_failures(self.result) else 0


def cpu_per_request(load: dict[str, Any], rps: float) -> dict[str, float]:
    """CPU milliseconds each stack process spent per request: unlike req/s, this hardly depends on how
    much CPU other workloads left the stack, and 1000 / (ms of a one-core process) bounds its rate."""
    if not rps:
        return {}
    per_process = {
        name: round(cores * 1000 / rps, 2)
        for name, cores in load["top_processes"].items()
        if analysis.counted_as(name) == "stack"
    }
    return {"stack": round(sum(per_process.values()), 2), **per_process}


def main(args: Any) -> int:
    stack = Stack.from_env()
    if not ready(stack.gateway_url):
        print(f"[bench] no ready gateway at {stack.gateway_url}; `make bench` (scripts/bench.sh) starts one")
        return 2
    try:
        vegeta.binary()
    except vegeta.VegetaMissing as missing:
        print(f"[bench] {missing}")
        return 3
    return Run(args, stack).execute()
