"""Which events the sink forwards: every event type each service declares in its EVENT_SCHEMAS.

Declaring a new event in ``services/<name>/schemas.py`` is enough for it to reach Kafka; a new
service is picked up once it is listed in ``services.common.config.SERVICES``.
"""

from __future__ import annotations

from importlib import import_module

from services.common.config import SERVICES


def event_routes() -> list[tuple[str, str]]:
    """(source service, event type) for every declared event, in a stable order."""
    routes = []
    for service in SERVICES:
        schemas = import_module(f"services.{service}.schemas")
        routes.extend((service, event_type) for event_type in sorted(schemas.EVENT_SCHEMAS))
    return routes


def event_sources() -> list[str]:
    """The services that declare at least one event: each gets a Kafka topic."""
    return list(dict.fromkeys(source for source, _ in event_routes()))
