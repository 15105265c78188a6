"""The gateway's log lines: the request's context on every record, one access line per request.

The records are taken by a handler carrying services.common.logs.ContextFilter, as the
handlers setup_logging installs do, so they hold what the console and the shipper get.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from gateway import create_app
from gateway.testing import FakeTransport, bearer, settings_for_tests, token_for
from services.common import logs

ACCESS_LOGGER = "gateway.access_log"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(logs.ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    handler = Records()
    logger = logging.getLogger("gateway")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def app(transport: FakeTransport) -> Flask:
    return create_app(settings_for_tests(), transport=transport)


def access_lines(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [record for record in records if record.name == ACCESS_LOGGER]


def test_a_request_logs_one_access_line_with_its_context(app: Flask, transport: FakeTransport,
                                                         records: list[logging.LogRecord]) -> None:
    transport.on("orders", "get_order", {"id": 42, "status": "PENDING"})
    response = app.test_client().get("/api/orders/42",
                                     headers={**bearer(token_for(app, 7)), "X-Request-ID": "req-log-1"})
    assert response.status_code == 200
    [line] = access_lines(records)
    assert line.levelno == logging.INFO
    assert (line.service, line.kind, line.correlation_id) == ("gateway", "http", "req-log-1")
    assert line.method == "GET /api/orders/<id:order_id>"
    assert (line.status, line.order_id, line.customer_id) == (200, 42, 7)
    assert isinstance(line.duration_ms, float) and line.duration_ms >= 0
    assert line.getMessage().startswith("GET /api/orders/42 200 in ")


def test_the_context_ends_with_the_request(app: Flask, records: list[logging.LogRecord]) -> None:
    client = app.test_client()
    client.get("/api/orders/42")  # no token: 401, but the order id was in the URL
    health = client.get("/health")
    first, second = access_lines(records)
    assert (first.status, first.order_id, first.customer_id) == (401, 42, None)
    # the next request on this thread starts clean: its own id, no order from the last one
    assert second.correlation_id == health.headers["X-Request-ID"] != first.correlation_id
    assert (second.method, second.status, second.order_id) == ("GET /health", 200, None)
    assert logs.current_context()["correlation_id"] is None
    assert logs.current_context()["kind"] is None


def test_an_unrouted_path_is_logged_by_its_path(app: Flask, records: list[logging.LogRecord]) -> None:
    app.test_client().delete("/no/such/thing", headers={"X-Request-ID": "req-404"})
    [line] = access_lines(records)
    assert (line.method, line.status, line.correlation_id) == ("DELETE /no/such/thing", 404, "req-404")


def test_an_unexpected_error_is_logged_under_the_request_id(app: Flask, transport: FakeTransport,
                                                            records: list[logging.LogRecord]) -> None:
    transport.on("orders", "get_order", KeyError("boom"))
    response = app.test_client().get("/api/orders/5",
                                     headers={**bearer(token_for(app, 3)), "X-Request-ID": "req-500"})
    assert response.status_code == 500
    [error] = [record for record in records if record.levelno == logging.ERROR]
    assert (error.correlation_id, error.order_id, error.service) == ("req-500", 5, "gateway")
    assert error.exc_info is not None
    [line] = access_lines(records)
    assert (line.status, line.correlation_id) == (500, "req-500")


def test_the_access_line_reaches_the_json_shipper_format(app: Flask, transport: FakeTransport,
                                                        records: list[logging.LogRecord]) -> None:
    transport.on("orders", "get_order", {"id": 9})
    app.test_client().get("/api/orders/9", headers={**bearer(token_for(app, 4)), "X-Request-ID": "req-json"})
    [line] = access_lines(records)
    doc: dict[str, Any] = json.loads(logs.JsonFormatter().format(line))
    assert {key: doc[key] for key in ("service", "kind", "correlation_id", "method", "status",
                                      "order_id", "customer_id", "level")} == {
        "service": "gateway", "kind": "http", "correlation_id": "req-json",
        "method": "GET /api/orders/<id:order_id>", "status": 200, "order_id": 9, "customer_id": 4,
        "level": "INFO"}
    assert doc["duration_ms"] >= 0
