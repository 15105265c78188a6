"""The stack under test: where it is, its processes, its settings, and HTTP calls to it."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import bindparam, create_engine, text

from bench.system import children

ROOT = Path(__file__).resolve().parents[1]
#: scripts/observability.sh's shipper and search engine, shared by the checkout's stacks
OBSERVABILITY = ROOT / "var" / "observability"
#: the log pipeline: the stack's logging beyond its own processes (supervisord copying their output,
#: the shipper, the search engine indexing); summed apart from the stack (the second CPU figure)
LOG_PIPELINE = ("supervisord", "rsyslog", "opensearch")
#: watched and reported, in neither sum: the stack's Prometheus server
MONITORING = ("prometheus",)
#: load generators and the floors' own servers: never part of a stack figure
NOT_STACK = ("locust", "vegeta", "hello")
#: settings of the stack's processes that change what the figures mean
STACK_SETTINGS = (
    "GATEWAY_WORKERS",
    "GATEWAY_THREADS",
    "RPC_POOL_SIZE",
    "RPC_TIMEOUT",
    "PRODUCT_CACHE_SECONDS",
    "RATE_LIMIT_ENABLED",
    "RATE_LIMIT_API",
    "RATE_LIMIT_AUTH",
    "MAX_WORKERS",
    "PAYMENT_LATENCY_MS",
    "PAYMENT_FAILURE_RATE",
    "SHIPPING_SHIP_AFTER_SECONDS",
    "SHIPPING_DELIVER_AFTER_SECONDS",
    "SHIPPING_TICK_SECONDS",
    "LOG_LEVEL",
    "LOGSTASH_HOST",
    "LOGSTASH_PORT",
    "ANALYTICS",
    "ORDERS_DATABASE_URL",
    "CATALOG_DATABASE_URL",
    "SQLITE_SYNCHRONOUS",
)
#: the products the benchmark orders (category "bench"), each given this much stock at the start of a run
BENCH_PRODUCTS = 20
BENCH_STOCK = 1_000_000
FINAL = frozenset({"DELIVERED", "REJECTED", "CANCELLED"})
#: the saga has decided: confirmed (then only the courier's timers remain) or ended
DECIDED = frozenset({"CONFIRMED", "SHIPPED"}) | FINAL


@dataclass(frozen=True)
class Stack:
    gateway_url: str
    amqp_uri: str
    stack_dir: Path
    admin_email: str
    admin_password: str | None

    @classmethod
    def from_env(cls) -> Stack:
        stack_dir = Path(os.environ.get("STACK_DIR", ROOT / "var" / "bench"))
        vhost = os.environ.get("STACK_VHOST", "")
        password = os.environ.get("ADMIN_PASSWORD")
        secret = stack_dir / "secrets" / "admin_password"
        if not password and secret.is_file():
            password = secret.read_text().strip()
        return cls(
            gateway_url=os.environ.get(
                "GATEWAY_URL", f"http://localhost:{os.environ.get('GATEWAY_PORT', '18180')}"
            ),
            amqp_uri=os.environ.get("AMQP_URI", f"pyamqp://guest:guest@localhost:5672/{vhost}"),
            stack_dir=stack_dir,
            admin_email=os.environ.get("ADMIN_EMAIL", "admin@example.com"),
            admin_password=password,
        )

    def supervisorctl(self, *args: str) -> str:
        env = {**os.environ, "STACK_DIR": str(self.stack_dir), "VENV": str(ROOT / ".venv")}
        result = subprocess.run(
            [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(ROOT / "scripts/supervisord.conf"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        return result.stdout

    def processes(self) -> dict[str, int]:
        """name -> pid of every process whose CPU the benchmark counts: the services and gateway
        workers (supervisord's programs), RabbitMQ, Redis, PostgreSQL when a service uses it, the
        log pipeline (LOG_PIPELINE) and the stack's Prometheus (MONITORING)."""
        found = self.platform_processes()
        if any(url.startswith("postgresql") for url in self.database_urls(found).values()):
            for index, pid in enumerate(postmasters()):
                found["postgres" if index == 0 else f"postgres-{pid}"] = pid
        for name, pid in (
            ("supervisord", _pid_file(self.stack_dir / "supervisord.pid")),
            ("rsyslog", _pid_file(OBSERVABILITY / "rsyslog" / "rsyslog.pid") or oldest("rsyslogd")),
            (
                "opensearch",
                _pid_file(OBSERVABILITY / "opensearch" / "opensearch.pid") or oldest("OpenSearchRunner"),
            ),
            ("prometheus", _pid_file(self.stack_dir / "prometheus" / "prometheus.pid")),
        ):
            if pid:
                found[name] = pid
        return found

    def database_urls(self, processes: dict[str, int]) -> dict[str, str]:
        """SERVICE_DATABASE_URL -> URL, as the stack's processes run with them."""
        urls: dict[str, str] = {}
        for pid in processes.values():
            urls.update({k: v for k, v in process_environ(pid).items() if k.endswith("_DATABASE_URL")})
        return urls

    def platform_processes(self) -> dict[str, int]:
        """name -> pid of the services, gateway workers, broker and Redis."""
        found: dict[str, int] = {}
        if (self.stack_dir / "supervisor.sock").exists():
            for line in self.supervisorctl("status").splitlines():
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "RUNNING" and parts[2] == "pid":
                    name = parts[0].split(":")[-1]
                    found[name] = int(parts[3].rstrip(","))
        master = found.pop("gateway", None)
        if master is not None:
            found["gateway-master"] = master
            for index, child in enumerate(sorted(children(master))):
                found[f"gateway-worker-{index + 1}"] = child
        for name, pattern in (("rabbitmq", "beam.smp"), ("redis", "redis-server")):
            pid = oldest(pattern)
            if pid:
                found[name] = pid
        return found

    def describe(self, processes: dict[str, int]) -> dict[str, str]:
        """What each non-platform CPU source is, for the reader of the CPU figures."""
        databases = sorted(
            {
                url.rsplit("/", 1)[-1].split("?")[0]
                for url in self.database_urls(processes).values()
                if url.startswith("postgresql")
            }
        )
        notes = {
            "postgres": "every process of the PostgreSQL cluster (the postmaster with its children: "
            "the backends of every database, ended ones included, checkpointer, WAL writer, "
            "autovacuum); the stack's databases: " + ", ".join(databases),
            "supervisord": "supervisord itself: copying its programs' output to their log files",
            "rsyslog": "the log shipper (scripts/observability.sh)",
            "opensearch": "the search engine indexing the logs (shared by the machine's stacks)",
            "prometheus": "the stack's Prometheus server: reported, counted in neither sum",
        }
        return {name: note for name, note in notes.items() if name in processes}

    def payments_of(self, order_ids: list[int]) -> dict[int, list[dict[str, Any]]] | None:
        """Every payment row of these orders (``ledger``) from the database the payments service
        runs with, or None when the service or its database URL is not found."""
        pid = self.platform_processes().get("payments")
        url = process_environ(pid).get("PAYMENTS_DATABASE_URL") if pid else None
        return ledger(url, order_ids) if url else None

    def settings(self, processes: dict[str, int]) -> dict[str, Any]:
        """The settings the stack's processes actually run with (read from their environment)."""
        settings: dict[str, Any] = {}
        for name in ("gateway-master", "orders", "shipping", "payments"):
            pid = processes.get(name)
            if pid is None:
                continue
            env = process_environ(pid)
            for key in STACK_SETTINGS:
                if key in env and key not in settings:
                    settings[key] = _redact(key, env[key])
        settings["gateway_workers_running"] = sum(1 for n in processes if n.startswith("gateway-worker-"))
        return settings


def ledger(url: str, order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Every payment row of these orders in the payments database at ``url``: the service's ledger
    of its charges, one row per charge (its unique key on order_id is what keeps it to one)."""
    engine = create_engine(url)
    query = text("SELECT order_id, status, amount_cents FROM payments WHERE order_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    rows: dict[int, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
    try:
        with engine.connect() as connection:
            for start in range(0, len(order_ids), 500):
                for order_id, status, amount in connection.execute(
                    query, {"ids": order_ids[start : start + 500]}
                ):
                    rows[order_id].append({"status": status, "amount_cents": amount})
    finally:
        engine.dispose()
    return rows


def _redact(key: str, value: str) -> str:
    """Database URLs may carry a password: keep only the driver."""
    return value.split(":", 1)[0] if key.endswith("_DATABASE_URL") else value


def oldest(pattern: str) -> int | None:
    """The longest-running process whose command line matches: the server, not a short-lived
    client of the same name (``rabbitmqctl`` runs a beam.smp too, and pids wrap around)."""
    result = subprocess.run(["pgrep", "-o", "-f", pattern], capture_output=True, text=True)
    pids = result.stdout.split()
    return int(pids[0]) if pids else None


def _pid_file(path: Path) -> int | None:
    """The pid a pid file names, if that process is alive."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def postmasters() -> list[int]:
    """PostgreSQL's postmaster processes: a ``postgres`` whose parent is not one. Counted with their
    children (system.process_cpu_seconds), that is every process of the cluster: the backends of
    every database, ended ones included, and the checkpointer, WAL writer and autovacuum."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if name != "postgres":
            continue
        try:
            parent = Path(f"/proc/{rest[1]}/stat").read_text()
        except OSError:
            parent = ""
        if "(postgres)" not in parent:
            found.append(int(stat.parent.name))
    return sorted(found)


def process_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def ready(gateway_url: str) -> bool:
    try:
        return requests.get(f"{gateway_url}/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False


class Api:
    """The few gateway calls the benchmark makes outside the load generator."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def request(
        self, method: str, path: str, token: str | None = None, patience: float = 180,
        headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """One call; 429 (the test stack's rate limits) and 503 (a breaker opened by the load just
        applied) are waited out as Retry-After says, for up to ``patience`` seconds, and so is a GET
        that timed out (an overloaded stack still working off a phase's backlog)."""
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        deadline = time.monotonic() + patience
        while True:
            try:
                response = self.session.request(
                    method, self.base_url + path, headers=headers, timeout=30, **kwargs
                )
            except requests.Timeout:
                if method != "GET" or time.monotonic() > deadline:
                    raise
                continue
            if response.status_code not in (429, 503) or time.monotonic() > deadline:
                return response
            time.sleep(min(float(response.headers.get("Retry-After", "1")), 10))

    def json(self, method: str, path: str, token: str | None = None, expect: int = 200, **kwargs: Any) -> Any:
        response = self.request(method, path, token, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def login(self, email: str, password: str) -> dict:
        return self.json("POST", "/auth/login", json={"email": email, "password": password})

    def customer(self, prefix: str) -> dict:
        """Register and log in a new customer: {"id", "email", "token"}."""
        email = f"{prefix}-{uuid.uuid4().hex[:12]}@bench.example.com"
        password = "bench-password-1"
        created = self.json(
            "POST",
            "/auth/register",
            expect=201,
            json={"name": "Bench Shopper", "email": email, "password": password},
        )
        return {"id": created["id"], "email": email, "token": self.login(email, password)["access_token"]}

    def bench_products(self, admin_token: str) -> list[int]:
        """The benchmark's products (created once per stack), each restocked for this run."""
        page = self.json("GET", "/api/products?category=bench&per_page=100", admin_token)
        by_sku = {p["sku"]: p["id"] for p in page["items"]}
        ids = []
        for index in range(BENCH_PRODUCTS):
            sku = f"BENCH-{index:03d}"
            if sku not in by_sku:
                # prices never end in 13 cents, which the simulated processor declines
                product = self.json(
                    "POST",
                    "/api/products",
                    admin_token,
                    expect=201,
                    json={
                        "sku": sku,
                        "name": f"Bench item {index}",
                        "category": "bench",
                        "price_cents": 500 + 10 * index,
                        "currency": "USD",
                    },
                )
                by_sku[sku] = product["id"]
            self.json("PUT", f"/api/inventory/{by_sku[sku]}", admin_token, json={"available": BENCH_STOCK})
            ids.append(by_sku[sku])
        return ids

    def orders_of(self, admin_token: str, customer_id: int) -> list[dict]:
        """Every order of one customer, with its status history."""
        orders: list[dict] = []
        page = 1
        while True:
            body = self.json(
                "GET", f"/api/orders?customer_id={customer_id}&per_page=100&page={page}", admin_token
            )
            orders += body["items"]
            if page * 100 >= body["total"]:
                return orders
            page += 1

    def unfinished_count(self, admin_token: str, customer_ids: set[int]) -> int:
        """How many orders of these customers are not in a final state yet."""
        count = 0
        for status in ("PENDING", "CONFIRMED", "SHIPPED"):
            page = 1
            while True:
                body = self.json("GET", f"/api/orders?status={status}&per_page=100&page={page}", admin_token)
                count += sum(1 for order in body["items"] if order["customer_id"] in customer_ids)
                if page * 100 >= body["total"]:
                    break
                page += 1
        return count
