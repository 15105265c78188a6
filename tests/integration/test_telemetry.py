"""Telemetry on real containers and the real broker: /metrics over HTTP, one log line per call
with its context, and the business metrics read from real databases."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from services.catalog.service import CatalogService
from services.common.config import SERVICES
from services.common.errors import NotFound
from services.common.logs import ContextFilter
from services.orders import metrics as orders_metrics
from services.orders.models import Base as OrdersBase
from services.orders.models import Order, StatusChange
from services.payments import metrics as payments_metrics
from services.payments.models import Base as PaymentsBase
from services.payments.models import Payment
from services.payments.service import PaymentsService
from tests.helpers import wait_for

COFFEE = {"sku": "COF-1", "name": "Coffee Beans", "category": "grocery", "price_cents": 1899,
          "currency": "USD"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


@pytest.fixture
def catalog_metrics(start_service: Any, rabbit_config: dict) -> tuple[Any, str]:
    port = free_port()
    # the port is METRICS_PORT_BASE + 1 + the service's position in SERVICES
    start_service(CatalogService, METRICS_PORT_BASE=port - 1 - SERVICES.index("catalog"))
    proxy = ServiceRpcProxy("catalog", rabbit_config, context_data={"correlation_id": "it-telemetry-1"},
                            timeout=10)
    yield proxy.start(), f"http://127.0.0.1:{port}/metrics"
    proxy.stop()


def test_metrics_count_calls_and_errors_by_method(catalog_metrics: tuple[Any, str]) -> None:
    catalog, url = catalog_metrics
    created = catalog.create_product(COFFEE)
    catalog.get_product(created["id"])
    with pytest.raises(NotFound):
        catalog.get_product(999_999)

    found = samples(requests.get(url, timeout=5).text)
    rpc = {"service": "catalog", "kind": "rpc"}
    assert value(found, "nameko_entrypoint_duration_seconds_count", **rpc, method="create_product") == 1
    assert value(found, "nameko_entrypoint_duration_seconds_count", **rpc, method="get_product") == 2
    assert value(found, "nameko_entrypoint_errors_total", **rpc, method="get_product", error="NotFound",
                 expected="true") == 1
    assert value(found, "nameko_entrypoint_errors_total", **rpc, method="create_product", error="NotFound",
                 expected="true") is None
    # the relay publishes product_created within its poll interval; the gauge is there either way
    assert value(found, "outbox_backlog", service="catalog") in (0, 1)
    assert value(found, "outbox_oldest_unpublished_age_seconds", service="catalog") is not None
    # a fresh vhost: nothing ever parked (the queue need not even exist)
    assert value(found, "dead_letter_queue_messages", service="catalog") == 0


def test_one_line_per_call_with_context_and_duration(catalog_metrics: tuple[Any, str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    catalog, _url = catalog_metrics
    # as config.yml's handlers do: the filter stamps the worker's context when a record is emitted
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.INFO, logger="services.common.telemetry"):
        created = catalog.create_product(COFFEE)
        with pytest.raises(NotFound):
            catalog.get_product(999_999)
        # nameko replies before the worker's result reaches the dependencies: the line follows
        ok, failed = wait_for(lambda: (lines := [
            record for record in caplog.records
            if record.name == "services.common.telemetry" and getattr(record, "kind", None) == "rpc"
        ]) and len(lines) == 2 and lines, timeout=5, what="two call lines")
    assert ok.getMessage().startswith("rpc catalog.create_product ok in ")
    assert (ok.method, ok.outcome, ok.levelname) == ("create_product", "ok", "INFO")
    assert ok.duration_ms > 0 and created["id"] >= 1
    assert failed.getMessage().startswith("rpc catalog.get_product failed: NotFound")
    # a typed answer is not a fault: INFO, not ERROR
    assert (failed.error, failed.outcome, failed.levelname) == ("NotFound", "error", "INFO")


def test_a_call_logs_its_correlation_id_and_the_ids_in_its_arguments(
        start_service: Any, rabbit_config: dict, caplog: pytest.LogCaptureFixture) -> None:
    start_service(PaymentsService)
    caplog.handler.addFilter(ContextFilter())
    with ServiceRpcProxy("payments", rabbit_config, context_data={"correlation_id": "it-charge-7"},
                         timeout=10) as payments, caplog.at_level(logging.INFO):
        payments.charge(7, 3, 1013, "EUR")  # ends in 13 cents: declined, an answer
        (line,) = wait_for(lambda: [record for record in caplog.records
                                    if getattr(record, "method", None) == "charge"
                                    and record.name == "services.common.telemetry"],
                           timeout=5, what="the charge line")
    assert (line.correlation_id, line.order_id, line.customer_id) == ("it-charge-7", 7, 3)
    assert line.service == "payments" and line.outcome == "ok"


def test_orders_business_metrics_come_from_its_database(database_factory: Any) -> None:
    engine = create_engine(database_factory(OrdersBase.metadata))
    with Session(engine) as session:
        confirmed = Order(customer_id=1, status="DELIVERED", currency="EUR", total_cents=1500,
                          saga_active=False)
        rejected = Order(customer_id=1, status="REJECTED", currency="EUR", total_cents=900, saga_active=False)
        running = Order(customer_id=2, status="PENDING", currency="USD", total_cents=700, saga_active=True,
                        stock_reserved=True, attempts=2)
        session.add_all([confirmed, rejected, running])
        session.flush()
        for order, path in ((confirmed, ["PENDING", "CONFIRMED", "SHIPPED", "DELIVERED"]),
                            (rejected, ["PENDING", "REJECTED"]), (running, ["PENDING"])):
            session.add_all(StatusChange(order_id=order.id, status=status) for status in path)
        session.commit()
        found = {(sample.name, frozenset(sample.labels.items())): sample.value
                 for family in orders_metrics.collect(session) for sample in family.samples}
    engine.dispose()
    assert value(found, "orders_by_status", status="DELIVERED") == 1
    assert value(found, "orders_by_status", status="CONFIRMED") == 0
    assert value(found, "orders_reached_status_total", status="PENDING") == 3
    assert value(found, "orders_reached_status_total", status="CONFIRMED") == 1
    # only confirmed orders count towards GMV
    assert value(found, "orders_gmv_cents_total", currency="EUR") == 1500
    assert value(found, "orders_gmv_cents_total", currency="USD") is None
    assert value(found, "orders_saga_active", step="CHARGE_PAYMENT", compensating="false") == 1
    assert value(found, "orders_saga_retrying") == 1


def test_payments_metrics_count_declines_by_reason(database_factory: Any) -> None:
    engine = create_engine(database_factory(PaymentsBase.metadata))
    with Session(engine) as session:
        session.add_all([
            Payment(order_id=1, customer_id=1, amount_cents=1013, currency="EUR", status="DECLINED",
                    decline_reason="card_declined_test_amount", processor_reference="a"),
            Payment(order_id=2, customer_id=1, amount_cents=500, currency="EUR", status="CAPTURED",
                    processor_reference="b"),
            Payment(order_id=3, customer_id=1, amount_cents=500, currency="EUR", status="REFUNDED",
                    processor_reference="c"),
        ])
        session.commit()
        found = {(sample.name, frozenset(sample.labels.items())): sample.value
                 for family in payments_metrics.collect(session) for sample in family.samples}
    engine.dispose()
    assert value(found, "payments_declined_total", reason="card_declined_test_amount") == 1
    assert value(found, "payments_charges_total") == 3
    assert value(found, "payments_by_status", status="REFUNDED") == 1
