"""Payments' business metrics, read from its database at every scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.payments.domain import CAPTURED, DECLINED, REFUNDED
from services.payments.models import Payment


def collect(session: Session) -> Iterator[Any]:
    by_status = dict(session.execute(select(Payment.status, func.count()).group_by(Payment.status)).all())
    gauge = GaugeMetricFamily("payments_by_status", "Payments per current status", labels=["status"])
    for status in (CAPTURED, DECLINED, REFUNDED):
        gauge.add_metric([status], by_status.get(status, 0))
    yield gauge
    # a decline is final, so the count of declined rows only grows: a counter
    declines = CounterMetricFamily("payments_declined", "Charges the processor declined, by reason",
                                   labels=["reason"])
    for reason, count in session.execute(
        select(Payment.decline_reason, func.count()).where(Payment.status == DECLINED)
        .group_by(Payment.decline_reason)
    ).all():
        declines.add_metric([reason or "unknown"], count)
    yield declines
    # every charge leaves exactly one row (captured, declined or later refunded)
    charges = CounterMetricFamily("payments_charges", "Charges answered by the processor")
    charges.add_metric([], sum(by_status.values()))
    yield charges
