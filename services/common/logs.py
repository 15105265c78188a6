"""One logging setup for every process: readable console, JSON to Logstash.

Every record gets the same context fields, whichever handler writes it:
``service``, ``correlation_id``, ``order_id``, ``customer_id``, ``kind``
(rpc, event, timer, http), ``method``, ``event_type``. The console shows them
after the message; the Logstash handler (python-logstash, TCP, one JSON
document per line) ships them as fields, so Elasticsearch can filter on them.

The context lives in a ``contextvars.ContextVar``: eventlet gives every
greenthread (so every nameko worker) its own, and so do the gateway's threads.
Inside a nameko worker the correlation id is read from the worker context at
the moment a record is made, because a worker may change it while it runs
(the orders recovery timer works for several orders in turn); one bound
explicitly wins, as a batch call's entry binds its own order's.

``config.yml``'s ``LOGGING`` wires these classes for the services; other
processes (the gateway, CLIs) call :func:`setup_logging`. Shipping is on when
``LOGSTASH_HOST`` is set: locally it points at the rsyslog shipper that
scripts/observability.sh runs, in compose at Logstash; nothing else changes.

A threaded server (the gateway) asks for ``background=True``: its request
threads then only stamp the context on a record and queue it, and one thread
formats and writes every record, so requests do not queue on the handlers'
locks while a line is written to the console pipe or the shipper's socket.
"""

from __future__ import annotations

import atexit
import contextvars
import copy
import logging
import logging.config
import logging.handlers
import os
import queue
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from logstash import TCPLogstashHandler
from logstash.formatter import LogstashFormatterVersion1

#: the fields every record carries (None when unknown)
CONTEXT_FIELDS = ("service", "correlation_id", "order_id", "customer_id", "kind", "method", "event_type")

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None)
#: the service a process runs, for records made outside any request (start-up, the outbox relay)
_process_service: str | None = os.environ.get("SERVICE_NAME")


def set_process_service(name: str) -> None:
    global _process_service
    _process_service = name


def bind(**fields: Any) -> contextvars.Token:
    """Add ``fields`` to the running request's context; pass the token to :func:`unbind`."""
    current = dict(_context.get() or {})
    current.update(fields)
    return _context.set(current)


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def current_context() -> dict[str, Any]:
    """The context fields of the running request, resolved now."""
    context = _context.get() or {}
    fields = {name: context.get(name) for name in CONTEXT_FIELDS}
    worker_ctx = context.get("worker_ctx")
    if fields["correlation_id"] is None and worker_ctx is not None:
        fields["correlation_id"] = worker_ctx.data.get("correlation_id")
    if fields["service"] is None:
        fields["service"] = _process_service
    return fields


class ContextFilter(logging.Filter):
    """Stamps the context fields on every record (an explicit ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_context().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class ConsoleFormatter(logging.Formatter):
    """``time LEVEL service logger: message [correlation_id=… order_id=…]``."""

    SHOWN = ("correlation_id", "order_id", "customer_id", "duration_ms")

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(service)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "service", None) is None:
            record.service = _process_service or "-"
        text = super().format(record)
        extras = " ".join(f"{name}={value}" for name in self.SHOWN
                          if (value := getattr(record, name, None)) is not None)
        if not extras:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [{extras}]{newline}{rest}"


class JsonFormatter(LogstashFormatterVersion1):
    """python-logstash's v1 event with a flat, stable set of fields.

    ``host`` becomes ``hostname``: Logstash and Beats use ``host`` as an object,
    and one index cannot map it both ways. Unknown context fields are left out
    rather than sent as nulls.
    """

    def __init__(self, message_type: str = "ecommerce") -> None:
        super().__init__(message_type=message_type)

    def format(self, record: logging.LogRecord) -> bytes:
        message = {
            "@timestamp": self.format_timestamp(record.created),
            "@version": "1",
            "message": record.getMessage(),
            "level": record.levelname,
            "logger": record.name,
            "hostname": self.host,
            "pid": record.process,
        }
        for key, value in self.get_extra_fields(record).items():
            if value is not None and key not in ("host", "path", "tags", "type", "stack_info", "taskName"):
                message[key] = value
        if record.exc_info:
            message["stack_trace"] = self.format_exception(record.exc_info)
            message["error"] = message.get("error") or record.exc_info[0].__name__
        return self.serialize(message)


class LogstashHandler(TCPLogstashHandler):
    """python-logstash's TCP handler with :class:`JsonFormatter`.

    A lost connection is retried with the standard library's backoff (1 s,
    doubling, at most 30 s); records made while it is down are dropped, and
    the socket's 1 s timeout (SocketHandler's) keeps a dead peer from stalling
    a worker.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, version=1)
        self.formatter = JsonFormatter()


def logstash_handler(host: str | None = None, port: int | str | None = None) -> logging.Handler:
    """The shipping handler when a host is configured, else one that drops records."""
    if not host:
        return logging.NullHandler()
    return LogstashHandler(str(host), int(port or 5000))


def logging_config(level: str = "INFO", logstash_host: str | None = None,
                   logstash_port: int | str | None = 5000) -> dict[str, Any]:
    """The dictConfig every process uses; config.yml's LOGGING is the same, in YAML."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"console": {"()": f"{__name__}.ConsoleFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "console", "filters": ["context"]},
            "logstash": {"()": f"{__name__}.logstash_handler", "host": logstash_host,
                         "port": logstash_port, "filters": ["context"]},
        },
        "root": {"level": level, "handlers": ["console", "logstash"]},
    }


def setup_logging(service: str, background: bool = False) -> None:
    """Configure logging for a process that is not started by ``nameko run`` (the gateway, CLIs);
    ``background`` writes records from a thread of their own (:func:`write_in_background`)."""
    set_process_service(service)
    logging.config.dictConfig(logging_config(
        os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOGSTASH_HOST"),
        os.environ.get("LOGSTASH_PORT", "5000"),
    ))
    if background:
        listener = write_in_background(logging.getLogger())
        atexit.register(listener.stop)  # writes what is still queued


#: records queued at most; a thread logging while the writer is this far behind waits for it
BACKLOG = 10_000


class _Enqueue(logging.handlers.QueueHandler):
    """Queues a record as it is (the standard QueueHandler would format it here and drop the
    exception): the message is resolved now, formatting and exceptions are left to the handlers."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.message = record.getMessage()
        record.msg, record.args = record.message, None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(record)  # blocks only while the writer is BACKLOG records behind: nothing is lost


def write_in_background(logger: logging.Logger, backlog: int = BACKLOG) -> logging.handlers.QueueListener:
    """Move ``logger``'s handlers to a writer thread; the logging thread only queues the record,
    after stamping its context (which lives in the logging thread) on it. Returns the started
    listener; ``stop()`` writes what is queued and ends the thread."""
    handlers = list(logger.handlers)
    records: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=backlog)
    enqueue = _Enqueue(records)
    enqueue.addFilter(ContextFilter())
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    for handler in handlers:
        logger.removeHandler(handler)
    logger.addHandler(enqueue)
    listener.start()
    return listener
