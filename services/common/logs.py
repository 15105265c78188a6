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

Every long-running process writes in the background (:func:`background_handler`): the thread
or greenthread that logs only stamps the context on a record and queues it, and one writer
formats the records and writes those that queued up together in one system call per output
(one pipe write to the console, one send to the shipper). Under load a line written on its own
cost more in those two system calls, and in waking supervisord and the shipper for it, than in
everything else (docs/performance.md, round 7). A process killed outright loses the lines of its
last ``LINGER`` seconds.
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
import time
from collections.abc import Iterator, Mapping, Sequence
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


class BatchEmitter(logging.Handler):
    """A handler that writes several records in one write (:class:`BatchListener` calls
    ``emit_batch``): ``encode`` makes one record's text, ``write`` writes what they joined to."""

    def encode(self, record: logging.LogRecord) -> Any:
        raise NotImplementedError

    def write(self, data: Any) -> None:
        raise NotImplementedError

    def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        try:
            parts = [self.encode(record) for record in records]
        except Exception:  # one record that cannot be formatted: the others still go, one by one
            for record in records:
                self.emit(record)
            return
        try:
            self.write(parts[0][:0].join(parts))
        except Exception:
            self.handleError(records[-1])


class LogstashHandler(BatchEmitter, TCPLogstashHandler):
    """python-logstash's TCP handler with :class:`JsonFormatter`.

    A lost connection is retried with the standard library's backoff (1 s,
    doubling, at most 30 s); records made while it is down are dropped, and
    the socket's 1 s timeout (SocketHandler's) keeps a dead peer from stalling
    a worker.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, version=1)
        self.formatter = JsonFormatter()

    def encode(self, record: logging.LogRecord) -> bytes:
        return self.makePickle(record)

    def write(self, data: bytes) -> None:
        self.send(data)


class ConsoleHandler(BatchEmitter, logging.StreamHandler):
    """The readable console line (:class:`ConsoleFormatter`) on stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(ConsoleFormatter())

    def encode(self, record: logging.LogRecord) -> str:
        return self.format(record) + self.terminator

    def write(self, data: str) -> None:
        self.stream.write(data)
        self.flush()


def logstash_handler(host: str | None = None, port: int | str | None = None) -> logging.Handler:
    """The shipping handler when a host is configured, else one that drops records."""
    if not host:
        return logging.NullHandler()
    return LogstashHandler(str(host), int(port or 5000))


def background_handler(logstash_host: str | None = None,
                       logstash_port: int | str | None = 5000) -> logging.Handler:
    """The handler every long-running process logs through: the console and the shipper (when
    ``logstash_host`` is set), written in the background (:func:`background_writer`). The
    writer stops, writing what is still queued, at exit."""
    handler, listener = background_writer([ConsoleHandler(), logstash_handler(logstash_host, logstash_port)])
    atexit.register(listener.stop)
    return handler


def logging_config(level: str = "INFO", logstash_host: str | None = None,
                   logstash_port: int | str | None = 5000, *, background: bool) -> dict[str, Any]:
    """The dictConfig every process uses; config.yml's LOGGING is the same, in YAML.
    ``background=False`` (a short command) writes each record as it is made."""
    if background:
        handlers = {"background": {"()": f"{__name__}.background_handler", "logstash_host": logstash_host,
                                   "logstash_port": logstash_port}}
    else:
        handlers = {
            "console": {"()": f"{__name__}.ConsoleHandler", "filters": ["context"]},
            "logstash": {"()": f"{__name__}.logstash_handler", "host": logstash_host,
                         "port": logstash_port, "filters": ["context"]},
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # the background writer stamps the context itself, as it queues a record
        "filters": {} if background else {"context": {"()": f"{__name__}.ContextFilter"}},
        "handlers": handlers,
        "loggers": {
            # kafka-python logs every failed reconnection at ERROR (hundreds during a 30 s outage)
            # and every metadata refresh at INFO; the sink and the KPI reader log their own warning
            "kafka": {"level": "CRITICAL"},
        },
        "root": {"level": level, "handlers": list(handlers)},
    }


def setup_logging(service: str, background: bool = False) -> None:
    """Configure logging for a process that is not started by ``nameko run`` (the gateway, CLIs);
    ``background`` writes records from a writer of their own (:func:`background_handler`)."""
    set_process_service(service)
    logging.config.dictConfig(logging_config(
        os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOGSTASH_HOST"),
        os.environ.get("LOGSTASH_PORT", "5000"), background=background,
    ))


#: records queued at most; a thread logging while the writer is this far behind waits for it
BACKLOG = 10_000
#: seconds the writer waits after a record for more to write with it
LINGER = 0.02
#: records written together at most
MAX_BATCH = 500


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


class BatchListener(logging.handlers.QueueListener):
    """A QueueListener that hands each handler the records that queued up together: a handler
    with ``emit_batch`` writes them in one system call."""

    def _monitor(self) -> None:
        while True:
            first = self.dequeue(True)
            batch = [] if first is self._sentinel else [first]
            stopping = not batch
            if batch:
                time.sleep(LINGER)
            while not stopping and len(batch) < MAX_BATCH:
                try:
                    record = self.dequeue(False)
                except queue.Empty:
                    break
                if record is self._sentinel:
                    stopping = True
                else:
                    batch.append(record)
            if batch:
                self.handle_batch(batch)
            if stopping:
                return

    def handle_batch(self, records: list[logging.LogRecord]) -> None:
        for handler in self.handlers:
            chosen = [record for record in records
                      if (not self.respect_handler_level or record.levelno >= handler.level)
                      and handler.filter(record)]
            if not chosen:
                continue
            if not isinstance(handler, BatchEmitter):
                for record in chosen:
                    handler.handle(record)
                continue
            handler.acquire()
            try:
                handler.emit_batch(chosen)
            finally:
                handler.release()


def background_writer(handlers: list[logging.Handler], backlog: int = BACKLOG
                      ) -> tuple[logging.Handler, BatchListener]:
    """A handler that stamps a record's context (which lives in the logging thread) and queues it,
    and the started listener that writes the queue to ``handlers`` from a thread of its own;
    ``stop()`` writes what is queued and ends the thread."""
    records: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=backlog)
    enqueue = _Enqueue(records)
    enqueue.addFilter(ContextFilter())
    listener = BatchListener(records, *handlers, respect_handler_level=True)
    listener.start()
    return enqueue, listener
