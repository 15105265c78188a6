"""The floors, measured in the same run on the same machine as the platform's figures.

* bare Flask "hello" under the gateway's gunicorn settings, driven by wrk
  with the same command as the gateway's single-endpoint figure;
* a raw AMQP request/reply round trip (pika client and pika responder);
* a Nameko RPC round trip through the gateway's pooled client
  (``gateway.rpc.RpcPool``) to a service that answers at once.

Ratios of the platform's figures to these are the headline figures: absolute
numbers drift between machines, ratios much less.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pika
import requests

from bench.stats import summarize
from bench.system import children

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS_MS[unit]


def wrk(
    url: str,
    seconds: float,
    connections: int,
    threads: int = 2,
    script: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One wrk run: req/s, latency percentiles, non-2xx and socket errors."""
    threads = min(threads, connections)  # wrk refuses fewer connections than threads
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    result = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
        timeout=seconds + 60,
    )
    out = result.stdout
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests_ = int(total.group(1)) if total else 0
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(map(int, socket_errors.groups())) if socket_errors else 0
    )
    return {
        "command": " ".join([*command, url]).replace(str(ROOT) + "/", ""),
        "requests": requests_,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]) if "50" in latency else None,
        "p90_ms": _ms(latency["90"]) if "90" in latency else None,
        "p99_ms": _ms(latency["99"]) if "99" in latency else None,
        "errors": errors,
        "error_rate": round(errors / requests_, 4) if requests_ else None,
    }


@contextmanager
def process(command: list[str], log: Path, env: dict[str, str] | None = None) -> Any:
    """Run a helper process for the duration of a block; stop it (and only it) afterwards."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def flask_hello(run_dir: Path, seconds: float, connections: int, watch: Any) -> dict[str, Any]:
    """wrk against bare Flask "hello" under gateway/gunicorn_conf.py (its own port)."""
    port = free_port()
    env = {"GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": ""}
    command = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gateway/gunicorn_conf.py"), "bench.hello:app"]
    url = f"http://127.0.0.1:{port}/hello"
    with process(command, run_dir / "hello-gunicorn.log", env) as proc:
        wait_until(lambda: requests.get(url, timeout=1).status_code == 200, 30, "the Flask hello server")
        workers = {f"hello-worker-{i + 1}": pid for i, pid in enumerate(sorted(children(proc.pid)))}
        watch({"hello-gunicorn-master": proc.pid, **workers})
        result = wrk(url, seconds, connections)
    result["server"] = "gunicorn -c gateway/gunicorn_conf.py bench.hello:app"
    return result


def pika_url(amqp_uri: str) -> str:
    """kombu's pyamqp://user:pw@host:port/vhost as pika's amqp:// URL (vhost quoted)."""
    parts = urlsplit(amqp_uri)
    vhost = parts.path[1:] or "/"
    return f"amqp://{parts.netloc}/{quote(vhost, safe='')}"


def amqp_round_trip(amqp_uri: str, run_dir: Path, calls: int, warmup: int = 100) -> dict[str, Any]:
    """Sequential request/reply through the broker with pika on both ends, no framework."""
    url = pika_url(amqp_uri)
    queue = f"bench-amqp-echo-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "bench.amqp_echo", url, queue]
    with process(command, run_dir / "amqp-echo.log"):
        connection = _connect(url)
        try:
            channel = connection.channel()
            reply_queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            replies = channel.consume(reply_queue, inactivity_timeout=5)
            wait_until(lambda: _consumers(connection, queue) > 0, 30, "the AMQP responder")
            body = json.dumps({"args": [], "kwargs": {"value": None}}).encode()
            latencies = []
            for index in range(warmup + calls):
                correlation_id = uuid.uuid4().hex
                started = time.perf_counter()
                channel.basic_publish(
                    "",
                    queue,
                    body,
                    pika.BasicProperties(
                        reply_to=reply_queue,
                        correlation_id=correlation_id,
                        delivery_mode=1,
                        content_type="application/json",
                    ),
                )
                method, properties, _ = next(replies)
                if method is None or properties.correlation_id != correlation_id:
                    raise RuntimeError("the AMQP responder did not answer in 5 s")
                channel.basic_ack(method.delivery_tag)
                if index >= warmup:
                    latencies.append((time.perf_counter() - started) * 1000)
            channel.cancel()
        finally:
            connection.close()
    return {
        "method": "pika BlockingConnection client -> queue -> pika responder -> reply queue, sequential",
        **summarize(latencies),
    }


def _connect(url: str, timeout: float = 90) -> pika.BlockingConnection:
    """A connection, waiting for the broker if it is away (the broker is shared: another stack's
    tests may be restarting it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return pika.BlockingConnection(pika.URLParameters(url))
        except pika.exceptions.AMQPConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def _consumers(connection: pika.BlockingConnection, queue: str) -> int:
    """Consumers of ``queue``, on a channel of its own (a missing queue closes the channel)."""
    channel = connection.channel()
    try:
        return channel.queue_declare(queue, passive=True).method.consumer_count
    finally:
        if channel.is_open:
            channel.close()


def nameko_round_trip(
    amqp_uri: str, run_dir: Path, calls: int, product_id: int | None, warmup: int = 100
) -> dict[str, Any]:
    """Sequential calls through gateway.rpc.RpcPool: to an echo service, then to catalog.get_product."""
    from gateway.rpc import RpcPool  # imports nameko (and so eventlet): only this phase needs it

    command = [
        str(VENV_BIN / "nameko"),
        "run",
        "--config",
        str(ROOT / "config.yml"),
        "bench.echo_service:BenchEcho",
    ]
    pool = RpcPool(amqp_uri, size=1, timeout=5)
    result: dict[str, Any] = {"method": "gateway.rpc.RpcPool(size=1).call(...), sequential, one pooled proxy"}
    try:
        with process(command, run_dir / "nameko-echo.log", {"AMQP_URI": amqp_uri, "LOGSTASH_HOST": ""}):
            wait_until(lambda: pool.consumers(["bench_echo"])["bench_echo"] > 0, 60, "the bench_echo service")
            result["echo"] = _time_calls(pool, "bench_echo", "ping", (None,), calls, warmup)
        if product_id is not None:
            # a real service with its database read, for reference
            result["catalog_get_product"] = _time_calls(
                pool, "catalog", "get_product", (product_id,), max(calls // 4, 50), warmup // 2
            )
    finally:
        pool.close()
    return result


def _time_calls(pool: Any, service: str, method: str, args: tuple, calls: int, warmup: int) -> dict[str, Any]:
    latencies = []
    for index in range(warmup + calls):
        started = time.perf_counter()
        pool.call(service, method, args, {}, correlation_id="bench-floor", timeout=5, safe=True)
        if index >= warmup:
            latencies.append((time.perf_counter() - started) * 1000)
    return summarize(latencies)
