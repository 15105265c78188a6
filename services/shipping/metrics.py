"""Shipping's metrics, read from its database at every scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.shipping.domain import STATUSES
from services.shipping.models import Shipment


def collect(session: Session) -> Iterator[Any]:
    by_status = dict(session.execute(select(Shipment.status, func.count()).group_by(Shipment.status)).all())
    gauge = GaugeMetricFamily("shipments_by_status", "Shipments per current status", labels=["status"])
    for status in STATUSES:
        gauge.add_metric([status], by_status.get(status, 0))
    yield gauge
