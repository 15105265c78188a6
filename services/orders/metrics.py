"""Orders' business metrics, read from its database at every scrape.

Counts from the append-only status history are exposed as counters (they only
grow), so ``increase()`` over them is exact across restarts; current states
are gauges.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.orders.adapters.repository import SAGA_COLUMNS, orders, saga_record
from services.orders.domain import saga
from services.orders.models import Order, StatusChange


def collect(session: Session) -> Iterator[Any]:
    by_status = dict(session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
    current = GaugeMetricFamily("orders_by_status", "Orders per current status", labels=["status"])
    for status in saga.Status:
        current.add_metric([status.value], by_status.get(status.value, 0))
    yield current

    reached = dict(session.execute(
        select(StatusChange.status, func.count(func.distinct(StatusChange.order_id)))
        .group_by(StatusChange.status)
    ).all())
    funnel = CounterMetricFamily("orders_reached_status", "Orders that ever reached each status (the funnel)",
                                 labels=["status"])
    for status in saga.Status:
        funnel.add_metric([status.value], reached.get(status.value, 0))
    yield funnel

    confirmed = select(StatusChange.order_id).where(StatusChange.status == saga.Status.CONFIRMED.value)
    gmv = CounterMetricFamily("orders_gmv_cents", "Gross merchandise value: total of every order ever "
                              "confirmed, in cents", labels=["currency"])
    for currency, cents in session.execute(
        select(Order.currency, func.sum(Order.total_cents))
        .where(Order.id.in_(confirmed)).group_by(Order.currency)
    ).all():
        gmv.add_metric([currency], cents or 0)
    yield gmv

    yield from _sagas(session)


def _sagas(session: Session) -> Iterator[Any]:
    """Running sagas by the step they wait to run, and how many are retrying a failed step."""
    steps = {(step.value, "false"): 0 for step in saga.Step} | {(step.value, "true"): 0 for step in saga.Step}
    retrying = 0
    active = session.execute(select(*SAGA_COLUMNS).where(orders.c.saga_active.is_(True)))
    for record in map(saga_record, active):
        step = saga.next_step(record.state)
        if step is not None:
            steps[(step.value, str(record.state.compensating).lower())] += 1
        retrying += record.attempts > 0 and record.stalled_reason is None
    gauge = GaugeMetricFamily("orders_saga_active", "Sagas with a step due, by that step",
                              labels=["step", "compensating"])
    for (step, compensating), count in steps.items():
        gauge.add_metric([step, compensating], count)
    yield gauge
    yield GaugeMetricFamily("orders_saga_retrying", "Sagas waiting to retry a step that failed technically",
                            value=retrying)
    stalled = session.scalar(select(func.count()).where(Order.stalled_reason.is_not(None)))
    yield GaugeMetricFamily("orders_saga_stalled", "Sagas parked after too many technical failures in a row, "
                            "waiting for an operator (make stalled)", value=stalled)
    awaiting = session.scalar(select(func.count()).where(Order.status == saga.Status.CONFIRMED.value,
                                                         Order.saga_active.is_(False)))
    yield GaugeMetricFamily("orders_saga_awaiting_shipment", "Confirmed orders waiting for shipping's events",
                            value=awaiting)
