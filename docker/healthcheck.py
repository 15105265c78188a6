"""Health check of the platform image: Docker's HEALTHCHECK, compose's and Kubernetes' exec probes.

    python docker/healthcheck.py              probe what PID 1 runs (below)
    python docker/healthcheck.py URL          healthy when URL answers 2xx
    python docker/healthcheck.py --broker     healthy while this container holds a connection to the broker

What PID 1 runs decides the probe, so one image and one HEALTHCHECK serve every process:

* ``gunicorn ... gateway/gunicorn_conf.py``: the gateway's ``/health`` on ``GATEWAY_PORT``;
* ``nameko run ... services.<name>.service``: its ``/metrics`` on the port
  ``services.common.config`` gives it from ``METRICS_PORT_BASE`` (what Prometheus scrapes);
* a nameko service that serves no /metrics: an established TCP connection to the broker's port
  (from ``AMQP_URI``), which nameko holds while it consumes;
* anything else (a one-shot job): healthy.

Exit 0 healthy, 1 not. Only the URL and --broker forms skip importing the project (a few ms).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 4.0
#: /proc/net/tcp state of an established connection
ESTABLISHED = "01"


def metrics_port(service: str) -> int | None:
    """The service's /metrics port, as services.common.telemetry computes it (None: it serves none)."""
    sys.path.insert(0, str(ROOT))
    from services.common import config

    base = int(os.environ.get("METRICS_PORT_BASE", "9100"))
    ports_of = getattr(config, "metrics_ports", None)
    if ports_of is not None:
        ports = ports_of(base).get(service)
        return ports[int(os.environ.get("METRICS_REPLICA", "0"))] if ports else None
    return base + 1 + config.SERVICES.index(service) if service in config.SERVICES else None


def pid1_command() -> list[str]:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return 200 <= response.status < 300
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return False


def broker_port() -> int:
    uri = urlparse(os.environ.get("AMQP_URI", "pyamqp://guest:guest@localhost:5672/"))
    return uri.port or (5671 if uri.scheme.endswith("s") else 5672)


def connected_to(port: int) -> bool:
    """An established TCP connection from this network namespace to a remote ``port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == ESTABLISHED and int(fields[2].rsplit(":", 1)[1], 16) == port:
                return True
    print(f"unhealthy: no connection to the broker's port {port}", file=sys.stderr)
    return False


def probe(command: list[str]) -> bool:
    joined = " ".join(command)
    if "gunicorn" in joined and "gateway" in joined:
        return http_ok(f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}/health")
    module = next((arg for arg in command if arg.startswith("services.") and arg.endswith(".service")), None)
    if "nameko" in joined and module:
        port = metrics_port(module.split(".")[1])
        if port is not None:
            return http_ok(f"http://127.0.0.1:{port}/metrics")
        return connected_to(broker_port())
    return True


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--broker":
        healthy = connected_to(broker_port())
    elif argv:
        healthy = http_ok(argv[0])
    else:
        healthy = probe(pid1_command())
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
