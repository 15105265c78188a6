"""The whole platform from its images, run by Compose from the repository's docker-compose.yml.

What runs: the images scripts/images.sh built (the platform, Kafka, Flink), the migrate and seed
jobs, the eight services, the gateway, the Kafka sink, analytics, Kafka, and the Flink profile
(jobmanager, taskmanager, topics job, job submitter). RabbitMQ, PostgreSQL and Redis are the real
local servers scripts/infra.sh started, reached through compose.local-infra.yml's relays
(the official images of those three can't be pulled here).

Network rule: the containers talk on the network Compose creates for this project (the relay's
host side on the host's network, to 127.0.0.1 only); the test reaches the gateway on a port
published on 127.0.0.1. Every host port is a free one picked here, so `make run` and the make
test stack (8080, 18080, 9092, 19092, ...) are left alone. The project name is unique per run and
`compose down -v` runs at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "scripts" / "infra.sh"
IMAGES = ROOT / "scripts" / "images.sh"
OVERRIDE = Path(__file__).with_name("compose.local-infra.yml")
SERVICES = ["customers", "catalog", "inventory", "cart", "orders", "payments", "shipping", "notifications"]
CORE = ["migrate", "seed", *SERVICES, "gateway", "kafka", "kafka_sink", "analytics"]
FLINK = ["flink-jobmanager", "flink-taskmanager", "kafka-topics", "flink-job"]
JOBS = {"migrate", "seed", "kafka-topics", "flink-job"}
#: the platform's containers compose asks to run as 10001 on a read-only root filesystem
HARDENED = {*SERVICES, "gateway", "kafka_sink", "analytics", "migrate", "seed", "kafka-topics"}
UP_TIMEOUT = 900


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


class Stack:
    """One compose project of this test: its command line, environment and containers."""

    def __init__(self) -> None:
        names = run(["bash", str(IMAGES), "compose"])
        assert names.returncode == 0, (
            f"no Docker Compose: {names.stderr} (run: bash scripts/images.sh engine)")
        self.compose = shlex.split(names.stdout.strip())
        self.project = f"ecommerce-ct-{uuid.uuid4().hex[:8]}"
        self.vhost = self.project
        self.db_prefix = self.project.replace("-", "_") + "_"
        self.relay_dir = ROOT / "var" / "containers" / self.project
        self.gateway_port = free_port()
        self.admin_password = secrets.token_urlsafe(16)
        self.env: dict[str, str] = {}

    def command(self, *args: str) -> list[str]:
        return [*self.compose, "-p", self.project, "-f", str(ROOT / "docker-compose.yml"),
                "-f", str(OVERRIDE), "--profile", "flink", *args]

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        result = run(self.command(*args), timeout=timeout, env=self.env, cwd=ROOT)
        if check:
            assert result.returncode == 0, (f"{' '.join(args)} failed ({result.returncode}):\n"
                                            f"{result.stderr[-4000:]}\n{self.diagnosis()}")
        return result.stdout

    def diagnosis(self) -> str:
        ps = run(self.command("ps"), env=self.env, cwd=ROOT).stdout
        logs = run(self.command("logs", "--no-color", "--tail", "15"), env=self.env, cwd=ROOT).stdout
        return f"--- compose ps\n{ps}\n--- last log lines\n{logs[-6000:]}"

    def containers(self) -> dict[str, list[dict[str, Any]]]:
        """docker inspect of every container of the project, by compose service."""
        ids = run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"])
        found: dict[str, list[dict[str, Any]]] = {}
        if not ids.stdout.split():
            return found
        for info in json.loads(run(["docker", "inspect", *ids.stdout.split()]).stdout):
            found.setdefault(info["Config"]["Labels"]["com.docker.compose.service"], []).append(info)
        return found

    def container(self, service: str) -> dict[str, Any]:
        return self.containers()[service][0]


def setup_local_servers(stack: Stack) -> None:
    """The test's own vhost, databases and Redis database on the local servers."""
    for command in (["rabbitmqctl", "-q", "add_vhost", stack.vhost],
                    ["rabbitmqctl", "-q", "set_permissions", "-p", stack.vhost, "guest", ".*", ".*", ".*"]):
        result = run(command)
        assert result.returncode == 0, (
            f"{' '.join(command)}: {result.stderr} (scripts/infra.sh start rabbitmq)")
    url = ""
    for service in SERVICES:
        result = run(["bash", str(INFRA), "pg-url", stack.db_prefix + service])
        assert result.returncode == 0, result.stderr
        url = result.stdout.strip()
    # postgresql+psycopg2://ecommerce:PASSWORD@127.0.0.1:5432/DB
    pg_password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    stack.relay_dir.mkdir(parents=True, exist_ok=True)
    stack.relay_dir.chmod(0o777)  # the relay runs as the image's user, 10001
    secret = {name: secrets.token_urlsafe(16) for name in (
        "RABBITMQ_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD",
        *(f"{s.upper()}_DB_PASSWORD" for s in SERVICES))}
    stack.env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
        **secret,
        "JWT_SECRET": secrets.token_urlsafe(32),
        "ADMIN_PASSWORD": stack.admin_password,
        # console logs only: no Logstash in this run, and `compose logs` is where the test looks
        "LOGSTASH_HOST": "",
        "IMAGE_TAG": os.environ.get("IMAGE_TAG", "dev"),
        "GATEWAY_PUBLISH_PORT": str(stack.gateway_port),
        **{name: str(free_port()) for name in (
            "RABBITMQ_PUBLISH_PORT", "RABBITMQ_MANAGEMENT_PUBLISH_PORT", "RABBITMQ_METRICS_PUBLISH_PORT",
            "POSTGRES_PUBLISH_PORT", "REDIS_PUBLISH_PORT", "FLINK_PUBLISH_PORT")},
        "CT_VHOST": stack.vhost, "CT_PG_PASSWORD": pg_password, "CT_DB_PREFIX": stack.db_prefix,
        "CT_REDIS_DB": "4", "CT_RELAY_DIR": str(stack.relay_dir),
    }
    run(["redis-cli", "-n", "4", "flushdb"])


def teardown_local_servers(stack: Stack) -> None:
    run(["rabbitmqctl", "-q", "delete_vhost", stack.vhost])
    for service in SERVICES:
        run(["bash", str(INFRA), "pg-dropdb", stack.db_prefix + service])
    run(["redis-cli", "-n", "4", "flushdb"])
    for leftover in stack.relay_dir.glob("*.sock"):
        leftover.unlink()
    if stack.relay_dir.exists():
        stack.relay_dir.rmdir()


def states(stack: Stack) -> str:
    """One line per container: its state, health and the last health check's output."""
    lines = []
    for service, infos in sorted(stack.containers().items()):
        for info in infos:
            health = info["State"].get("Health") or {}
            last = (health.get("Log") or [{}])[-1].get("Output", "").strip()[-200:]
            lines.append(f"{service}: {info['State']['Status']} exit={info['State']['ExitCode']} "
                         f"health={health.get('Status', '-')} {last}")
    return "\n".join(lines)


def wait_healthy(stack: Stack, timeout: float) -> dict[str, list[dict[str, Any]]]:
    try:
        return wait_for(lambda: all_healthy(stack), timeout=timeout, interval=3,
                        what="every container healthy and every job exited 0")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{states(stack)}") from None


def all_healthy(stack: Stack) -> dict[str, list[dict[str, Any]]] | None:
    """Every long-running container healthy and every job exited 0, or None while not yet."""
    containers = stack.containers()
    if not set(CORE + FLINK) <= set(containers):
        return None
    for service, infos in containers.items():
        for info in infos:
            state = info["State"]
            if service in JOBS:
                if state["Status"] != "exited" or state["ExitCode"] != 0:
                    return None
            elif state.get("Health", {}).get("Status") != "healthy":
                return None
    return containers


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    stack = Stack()
    for image in run(["bash", str(IMAGES), "names"]).stdout.split("\n"):
        if image.strip():
            name = image.split()[0]
            assert run(["docker", "image", "inspect", name]).returncode == 0, (
                f"image {name} is missing: build it with `bash scripts/images.sh` (make images)")
    setup_local_servers(stack)
    try:
        up(stack)
        yield stack
    finally:
        stack("down", "-v", "--remove-orphans", "--timeout", "20", timeout=300, check=False)
        teardown_local_servers(stack)


def up(stack: Stack) -> None:
    """`compose up -d` of the whole run, again while a dependency was seen unhealthy.

    Compose 1.29 gives up on a service as soon as one of its dependencies' health checks fails
    once (on a loaded machine, a check can miss its timeout while the JVMs start); another `up`
    starts what is left. The health assertions below still need every container healthy.
    """
    deadline = time.monotonic() + UP_TIMEOUT
    while True:
        result = run(stack.command("up", "-d", "--no-build", *CORE, *FLINK), timeout=UP_TIMEOUT,
                     env=stack.env, cwd=ROOT)
        if result.returncode == 0:
            return
        retry = "is unhealthy" in result.stderr and time.monotonic() < deadline
        assert retry, (f"compose up failed ({result.returncode}):\n{result.stderr[-4000:]}\n"
                       f"{stack.diagnosis()}")
        time.sleep(10)


def gateway(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.gateway_port}"


def curl(*args: str) -> str:
    result = run(["curl", "-s", *args], timeout=60)
    assert result.returncode == 0, f"curl {' '.join(args)}: {result.stderr}"
    return result.stdout


def login(stack: Stack, email: str, password: str) -> str:
    answer = curl("-X", "POST", f"{gateway(stack)}/auth/login", "-H", "Content-Type: application/json",
                  "-d", json.dumps({"email": email, "password": password}))
    return json.loads(answer)["access_token"]


def order_status(stack: Stack, token: str, order_id: int) -> str:
    answer = curl(f"{gateway(stack)}/api/orders/{order_id}", "-H", f"Authorization: Bearer {token}")
    return json.loads(answer)["status"]


# ---------------------------------------------------------------- the tests, in order


def test_every_container_turns_healthy_and_the_jobs_exit_0(stack: Stack) -> None:
    containers = wait_healthy(stack, timeout=300)
    assert len(containers["kafka_sink"]) == 2, "compose asks for two kafka_sink replicas"


def test_the_images_run_as_non_root_on_a_read_only_root(stack: Stack) -> None:
    containers = stack.containers()
    for service in HARDENED:
        for info in containers[service]:
            assert info["Config"]["User"] == "10001:10001", f"{service} runs as {info['Config']['User']!r}"
            assert info["HostConfig"]["ReadonlyRootfs"], f"{service}'s root filesystem is writable"
    gateway_id = containers["gateway"][0]["Id"]
    writes = "import os\ntry:\n open('/app/probe', 'w')\nexcept OSError as e:\n print(os.getuid(), e.errno)"
    probe = run(["docker", "exec", gateway_id, "python", "-c", writes])
    assert probe.stdout.split() == ["10001", "30"], probe  # 30: EROFS, read-only file system
    for service, uid in (("kafka", "1000"), ("flink-jobmanager", "10001"), ("flink-taskmanager", "10001")):
        who = run(["docker", "exec", containers[service][0]["Id"], "id", "-u"])
        assert who.stdout.strip() == uid, f"{service} runs as uid {who.stdout.strip()!r} ({who.stderr})"


def test_the_seed_walkthrough_reaches_delivered_and_its_request_id_is_in_the_logs(stack: Stack) -> None:
    base = gateway(stack)
    john = '{"name": "John Doe", "email": "john@example.com", "password": "password123", "role": "admin"}'
    register = curl("-w", "\n%{http_code}", "-X", "POST", f"{base}/auth/register", "-H",
                    "Content-Type: application/json", "-d", john)
    body, status = register.rsplit("\n", 1)
    assert status == "201", body
    assert json.loads(body)["role"] == "customer"
    token = login(stack, "john@example.com", "password123")
    products = json.loads(curl(f"{base}/api/products?q=coffee&per_page=5"))
    assert products["items"], products
    request_id = f"ct-{uuid.uuid4().hex}"
    head = curl("-D", "-", "-o", "/dev/null", "-X", "POST", f"{base}/api/orders",
                "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json",
                "-H", "Idempotency-Key: my-first-order", "-H", f"X-Request-ID: {request_id}",
                "-d", '{"product_id": 1, "quantity": 1}')
    assert head.startswith("HTTP/1.1 202"), head
    location = next(line for line in head.splitlines() if line.lower().startswith("location:"))
    order_id = int(location.rsplit("/", 1)[1])
    wait_for(lambda: order_status(stack, token, order_id) == "DELIVERED", timeout=120, interval=1,
             what=f"order {order_id} DELIVERED (compose's shipping timers: 5 s, then 10 s)")
    payment = json.loads(curl(f"{base}/api/payments/{order_id}", "-H", f"Authorization: Bearer {token}"))
    assert payment["status"] == "CAPTURED", payment

    for service in ("gateway", "orders"):
        assert request_id in stack("logs", "--no-color", service), f"{request_id} is not in {service}'s logs"


def test_the_flink_image_computes_a_kpi_window_from_the_containerized_kafka(stack: Stack) -> None:
    # the orders of the walkthrough above went RabbitMQ -> kafka_sink -> Kafka -> the Flink job
    # -> analytics.kpis -> the analytics service -> the gateway; windows are 60 s (the job's default)
    admin = login(stack, "admin@example.com", stack.admin_password)

    def a_window() -> dict[str, Any] | None:
        answer = json.loads(curl(f"{gateway(stack)}/api/analytics/kpis?limit=5",
                                 "-H", f"Authorization: Bearer {admin}"))
        return next((w for w in answer.get("windows", []) if w.get("orders_placed", 0) >= 1), None)

    window = wait_for(a_window, timeout=240, interval=5, what="a KPI window with the walkthrough's order")
    assert window["orders_placed"] >= 1, window
    jobs = run(["docker", "exec", stack.container("flink-jobmanager")["Id"], "python", "-c",
                "import urllib.request, sys; sys.stdout.write(urllib.request.urlopen("
                "'http://127.0.0.1:8081/jobs/overview').read().decode())"])
    running = [j["name"] for j in json.loads(jobs.stdout)["jobs"] if j["state"] == "RUNNING"]
    assert "ecommerce-kpis" in running, jobs.stdout


def test_a_second_up_reruns_the_jobs_idempotently(stack: Stack) -> None:
    products_before = json.loads(curl(f"{gateway(stack)}/api/products?per_page=5"))["total"]
    started = {job: stack.container(job)["State"]["StartedAt"] for job in ("migrate", "seed")}
    up(stack)

    def rerun() -> bool:
        for job in ("migrate", "seed"):
            state = stack.container(job)["State"]
            if state["StartedAt"] == started[job] or state["Status"] != "exited":
                return False
        return True

    wait_for(rerun, timeout=240, interval=2, what="migrate and seed to run again")
    for job in ("migrate", "seed"):
        assert stack.container(job)["State"]["ExitCode"] == 0, stack("logs", "--no-color", job)
    assert json.loads(curl(f"{gateway(stack)}/api/products?per_page=5"))["total"] == products_before
    wait_healthy(stack, timeout=180)
