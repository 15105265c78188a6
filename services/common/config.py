"""Configuration: ``config.yml`` with nameko's ``${VAR:default}`` expansion.

``config.yml`` is the one place defaults live; the services (through
``nameko run --config``), the migrations and the tools all read it here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from nameko.cli.main import setup_yaml_parser

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = ROOT / "config.yml"

#: the domain services: each owns a database and declares its events; in start-up order
SERVICES = (
    "customers",
    "catalog",
    "inventory",
    "cart",
    "orders",
    "payments",
    "shipping",
    "notifications",
)
#: the streaming side's Nameko services (docs/analytics.md); they keep no database
STREAMING_SERVICES = ("analytics", "kafka_sink")
#: processes a service runs as (supervisord's numprocs, compose and Kubernetes replicas); one if unlisted
REPLICAS = {"kafka_sink": 2}
#: every Nameko service, in the order that numbers their /metrics ports (``metrics_ports``)
NAMEKO_SERVICES = SERVICES + STREAMING_SERVICES


def metrics_ports(base: int) -> dict[str, list[int]]:
    """Each Nameko service's /metrics ports, one per replica, from ``base`` + 1 in NAMEKO_SERVICES order:
    customers 9101 ... notifications 9108, analytics 9109, kafka_sink 9110 and 9111 by default."""
    ports: dict[str, list[int]] = {}
    next_port = base + 1
    for service in NAMEKO_SERVICES:
        count = REPLICAS.get(service, 1)
        ports[service] = list(range(next_port, next_port + count))
        next_port += count
    return ports


def load_config(path: Path = CONFIG_FILE) -> dict[str, Any]:
    setup_yaml_parser()
    with open(path) as handle:
        return yaml.safe_load(handle)


def database_url(service: str) -> str:
    return load_config()["DB_URIS"][f"{service}:Base"]


def setting(name: str, default: str) -> str:
    """An environment setting, read at use so a test can change it."""
    return os.environ.get(name, default)
