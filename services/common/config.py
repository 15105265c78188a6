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

#: every Nameko service, in start-up order
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


def load_config(path: Path = CONFIG_FILE) -> dict[str, Any]:
    setup_yaml_parser()
    with open(path) as handle:
        return yaml.safe_load(handle)


def database_url(service: str) -> str:
    return load_config()["DB_URIS"][f"{service}:Base"]


def setting(name: str, default: str) -> str:
    """An environment setting, read at use so a test can change it."""
    return os.environ.get(name, default)
