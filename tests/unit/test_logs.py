"""The shared logging setup: context on every record, JSON over python-logstash's TCP, console text."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.common import logs
from services.common.logsearch import delete_age, expired_indices


def make_record(message: str = "hello", **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("tests.logs", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_the_filter_stamps_the_bound_context_on_a_record() -> None:
    with logs.bound(service="orders", order_id=7, kind="rpc", method="create_order"):
        record = make_record()
        logs.ContextFilter().filter(record)
    assert (record.service, record.order_id, record.kind) == ("orders", 7, "rpc")
    assert record.method == "create_order"
    assert record.correlation_id is None and record.customer_id is None


def test_the_correlation_id_is_read_from_the_worker_when_the_record_is_made() -> None:
    worker_ctx = SimpleNamespace(data={"correlation_id": "first"})
    with logs.bound(service="orders", worker_ctx=worker_ctx):
        worker_ctx.data["correlation_id"] = "second"  # the recovery timer moves to another order
        record = make_record()
        logs.ContextFilter().filter(record)
    assert record.correlation_id == "second"


def test_an_explicit_extra_wins_over_the_context() -> None:
    with logs.bound(order_id=1):
        record = make_record(order_id=2)
        logs.ContextFilter().filter(record)
    assert record.order_id == 2


def test_context_is_gone_after_the_block() -> None:
    with logs.bound(correlation_id="abc"):
        pass
    assert logs.current_context()["correlation_id"] is None


def test_json_carries_the_fields_and_leaves_out_unknown_ones() -> None:
    with logs.bound(service="payments", correlation_id="req-1", order_id=5, kind="rpc", method="charge"):
        record = make_record("charged", duration_ms=3.5)
        logs.ContextFilter().filter(record)
    doc = json.loads(logs.JsonFormatter().format(record))
    assert doc["message"] == "charged" and doc["level"] == "INFO" and doc["service"] == "payments"
    assert (doc["correlation_id"], doc["order_id"], doc["method"]) == ("req-1", 5, "charge")
    assert doc["duration_ms"] == 3.5
    assert "customer_id" not in doc and "host" not in doc and doc["hostname"]
    assert datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00")).tzinfo is not None


def test_json_of_an_exception_has_its_type_and_traceback() -> None:
    try:
        raise KeyError("x")
    except KeyError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    doc = json.loads(logs.JsonFormatter().format(record))
    assert doc["error"] == "KeyError" and "Traceback" in doc["stack_trace"]


def test_console_line_shows_service_and_ids() -> None:
    with logs.bound(service="orders", correlation_id="req-9", order_id=3):
        record = make_record("order placed", duration_ms=12.5)
        logs.ContextFilter().filter(record)
    line = logs.ConsoleFormatter().format(record)
    assert " orders tests.logs: order placed [correlation_id=req-9 order_id=3 duration_ms=12.5]" in line


def test_no_host_means_no_shipping() -> None:
    assert isinstance(logs.logstash_handler(None, 5000), logging.NullHandler)
    assert isinstance(logs.logstash_handler("", 5000), logging.NullHandler)


@pytest.fixture
def tcp_listener() -> Iterator[tuple[int, list[bytes], threading.Thread]]:
    """A one-connection TCP server that keeps what it receives until the peer closes."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def accept() -> None:
        connection, _ = server.accept()
        with connection:
            while chunk := connection.recv(65536):
                received.append(chunk)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], received, thread
    server.close()


def test_the_handler_sends_one_json_document_per_line_over_tcp(
        tcp_listener: tuple[int, list[bytes], threading.Thread]) -> None:
    port, received, reader = tcp_listener
    handler = logs.logstash_handler("127.0.0.1", port)
    handler.addFilter(logs.ContextFilter())
    with logs.bound(service="shipping", correlation_id="req-tcp"):
        handler.handle(make_record("first"))
        handler.handle(make_record("second"))
    handler.close()
    reader.join(timeout=5)
    lines = b"".join(received).decode().splitlines()
    docs = [json.loads(line) for line in lines]
    assert [doc["message"] for doc in docs] == ["first", "second"]
    assert {doc["correlation_id"] for doc in docs} == {"req-tcp"}


class CountingStream:
    """A console stream that counts the writes it gets."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def test_the_background_writer_writes_what_queued_together_in_one_write_per_output(
        tcp_listener: tuple[int, list[bytes], threading.Thread]) -> None:
    port, received, reader = tcp_listener
    console, stream = logs.ConsoleHandler(), CountingStream()
    console.setStream(stream)  # type: ignore[arg-type]
    shipper = logs.LogstashHandler("127.0.0.1", port)
    sends: list[bytes] = []
    send = shipper.send
    shipper.send = lambda data: (sends.append(data), send(data))  # type: ignore[method-assign]
    enqueue, listener = logs.background_writer([console, shipper])
    logger = logging.getLogger(f"tests.batched.{id(object())}")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(enqueue)
    with logs.bound(service="orders", correlation_id="req-batch"):
        for n in range(50):  # well within LINGER: one batch
            logger.info("line %d", n)
    listener.stop()  # writes what is queued
    shipper.close()
    reader.join(timeout=5)
    assert len(stream.writes) == 1 and len(sends) == 1
    lines = stream.writes[0].splitlines()
    assert [line.split(": ", 1)[1].split(" [")[0] for line in lines] == [f"line {n}" for n in range(50)]
    assert all("correlation_id=req-batch" in line for line in lines)
    docs = [json.loads(line) for line in b"".join(received).decode().splitlines()]
    assert [doc["message"] for doc in docs] == [f"line {n}" for n in range(50)]
    assert {doc["correlation_id"] for doc in docs} == {"req-batch"}


def test_retention_deletes_only_days_older_than_the_policy() -> None:
    now = datetime(2026, 5, 20, 12, tzinfo=UTC)
    names = ["ecommerce-logs-2026.05.12", "ecommerce-logs-2026.05.13", "ecommerce-logs-2026.05.19", "other"]
    assert expired_indices(names, now, timedelta(days=7)) == ["ecommerce-logs-2026.05.12"]
    assert delete_age({"policy": {"phases": {"delete": {"min_age": "7d"}}}}) == timedelta(days=7)


def test_without_a_worker_correlation_id_the_bound_one_is_kept() -> None:
    # an event published without nameko's header still carries its envelope's id
    with logs.bound(correlation_id="from-envelope", worker_ctx=SimpleNamespace(data={})):
        assert logs.current_context()["correlation_id"] == "from-envelope"


def test_a_correlation_id_bound_inside_a_worker_wins_over_the_workers() -> None:
    # a batch call's entry logs under its own order's id, not the call's
    with logs.bound(worker_ctx=SimpleNamespace(data={"correlation_id": "the-call"})):
        with logs.bound(correlation_id="order-7"):
            assert logs.current_context()["correlation_id"] == "order-7"
        assert logs.current_context()["correlation_id"] == "the-call"


class Written(logging.Handler):
    """Records as a handler behind the queue gets them, with the thread that wrote them."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(logs.ContextFilter())
        self.records: list[tuple[logging.LogRecord, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        formatted = logs.JsonFormatter().format(record).decode()
        self.records.append((record, threading.current_thread().name, formatted))


def test_background_writing_keeps_the_context_message_and_exception() -> None:
    logger = logging.getLogger(f"tests.background.{id(object())}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    written = Written()
    enqueue, listener = logs.background_writer([written])
    logger.addHandler(enqueue)
    try:
        def request() -> None:
            args = {"n": 1}
            with logs.bound(service="gateway", correlation_id="req-42", kind="http"):
                logger.info("answered %s", args, extra={"duration_ms": 3.5})
                args["n"] = 2  # changed after logging: the line keeps what it was
                try:
                    raise ValueError("boom")
                except ValueError:
                    logger.exception("failed")

        thread = threading.Thread(target=request, name="request-thread")
        thread.start()
        thread.join()
    finally:
        listener.stop()  # writes what is queued
    assert [type(h).__name__ for h in logger.handlers] == ["_Enqueue"]
    (line, line_thread, _), (error, _, error_json) = written.records
    assert line.getMessage() == "answered {'n': 1}"
    context = (line.correlation_id, line.kind, line.service, line.duration_ms)
    assert context == ("req-42", "http", "gateway", 3.5)
    assert line_thread != "request-thread"
    assert error.exc_info is not None and error.correlation_id == "req-42"
    document = json.loads(error_json)
    assert document["message"] == "failed" and document["error"] == "ValueError"
    assert "boom" in document["stack_trace"]


def test_setup_logging_in_the_background_routes_the_root_logger_through_a_queue(
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logs._process_service)
    registered: list[object] = []
    monkeypatch.setattr(logs.atexit, "register", registered.append)
    monkeypatch.delenv("LOGSTASH_HOST", raising=False)
    try:
        logs.setup_logging("gateway-test", background=True)
        assert [type(h).__name__ for h in root.handlers] == ["_Enqueue"]
        assert len(registered) == 1  # the listener's stop, at exit
    finally:
        for stop in registered:
            stop()  # type: ignore[operator]
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logs.set_process_service(saved[2])  # type: ignore[arg-type]
