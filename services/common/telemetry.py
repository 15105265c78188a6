"""Logs and metrics for every entrypoint of a service: ``telemetry = Telemetry()``.

One dependency provider per service class does three things:

* **log context**: around every worker it binds service, kind (rpc, event, event_batch,
  timer), method, event type, order_id and customer_id (taken from the call's
  arguments, the event's payload and the result) for every record the worker
  makes (see services.common.logs), and logs one line per call with its
  outcome and ``duration_ms``;
* **metrics**: latency histogram and error counter per entrypoint, plus
  scrape-time gauges read from the service's own database (outbox backlog,
  whatever the service's ``collect`` adds) and the dead-letter queue depth;
* **/metrics**: served on the port ``services.common.config.metrics_ports``
  gives the service from ``METRICS_PORT_BASE`` (customers 9101 …
  notifications 9108, analytics 9109, kafka_sink 9110-9111 by default).
  Without ``METRICS_PORT_BASE`` (the integration tests) nothing listens; the
  metrics are still recorded.

Each container has its own registry, so several containers of one service can
run in one process (the tests) without clashing.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC
from typing import Any

import eventlet
import eventlet.wsgi
from eventlet.semaphore import Semaphore
from kombu import Connection
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.timer import Timer
from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common.batch_events import BatchEventHandler
from services.common.config import metrics_ports
from services.common.errors import InternalError, ServiceError
from services.common.logs import bind, bound, set_process_service, unbind
from services.common.messaging import DEAD_LETTER_QUEUE
from services.common.rpc import CALLER_ERRORS
from services.common.store import Store

log = logging.getLogger(__name__)

#: seconds; from a cached read (1 ms) to an RPC that hit its 10 s deadline
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: the ids a log line is searchable by
ID_FIELDS = ("order_id", "customer_id")

#: yields a service's own metric families at each scrape, from its database session (None without one)
MetricsCollector = Callable[[Session | None], Iterable[Any]]


def metrics_port(config: dict[str, Any], service: str) -> int | None:
    """This process's /metrics port; METRICS_REPLICA (supervisord's process_num) picks a replica's."""
    base = config.get("METRICS_PORT_BASE")
    ports = metrics_ports(int(base)).get(service) if base else None
    if not ports:
        return None
    return ports[int(os.environ.get("METRICS_REPLICA", "0"))]


def entrypoint_kind(entrypoint: Any) -> str:
    if isinstance(entrypoint, Rpc):
        return "rpc"
    if isinstance(entrypoint, EventHandler):
        return "event"
    if isinstance(entrypoint, Timer):
        return "timer"
    if isinstance(entrypoint, BatchEventHandler):
        return "event_batch"
    return type(entrypoint).__name__.lower()


def _ids(source: Any) -> dict[str, Any]:
    if not isinstance(source, dict):
        return {}
    return {name: source[name] for name in ID_FIELDS if isinstance(source.get(name), int | str)}


def call_fields(worker_ctx: Any, kind: str) -> dict[str, Any]:
    """What a worker is about: the event type and the ids in its arguments."""
    fields: dict[str, Any] = {}
    if kind == "event":
        envelope = worker_ctx.args[0] if worker_ctx.args else {}
        if isinstance(envelope, dict):
            fields["event_type"] = envelope.get("type")
            # the envelope's id, for events published without nameko's header (replays, tools)
            fields["correlation_id"] = envelope.get("correlation_id")
            fields.update(_ids(envelope.get("payload")))
        fields.setdefault("event_type", worker_ctx.entrypoint.event_type)
        return fields
    if kind == "event_batch":
        return {"events": len(worker_ctx.args[0])}
    try:
        signature = _signature(type(worker_ctx.service), worker_ctx.entrypoint.method_name)
        # the class's function: the service instance takes ``self``'s place
        arguments = signature.bind_partial(worker_ctx.service, *worker_ctx.args,
                                           **worker_ctx.kwargs).arguments
    except TypeError:  # a call with the wrong signature: nameko answers it, nothing to log from it
        return fields
    return _ids(arguments)


@functools.cache
def _signature(service_cls: type, method_name: str) -> inspect.Signature:
    """A method's signature, worked out once per method rather than on every call (``inspect.signature``
    takes about twice as long as binding the call's arguments to it)."""
    return inspect.signature(getattr(service_cls, method_name))


def event_log_context(envelope: dict[str, Any], method: str) -> Any:
    """Log what follows about one event of a batch as its own handler's worker would: with the
    method, the event type, its ids and its correlation id (a batch worker has none of its own)."""
    return bound(method=method, kind="event", event_type=envelope.get("type"),
                 correlation_id=envelope.get("correlation_id"), **_ids(envelope.get("payload")))


def result_ids(result: Any, result_id: str | None) -> dict[str, Any]:
    """Ids a result reveals, e.g. the id of the order create_order made."""
    ids = _ids(result)
    if result_id and isinstance(result, dict) and isinstance(result.get("id"), int):
        ids.setdefault(result_id, result["id"])
    return ids


class DeadLetterProbe:
    """Depth of the dead-letter queue, over one AMQP connection kept between scrapes."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self._connection: Connection | None = None
        self._lock = Semaphore()

    def depth(self) -> int | None:
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = Connection(self.amqp_uri, connect_timeout=2)
                    self._connection.ensure_connection(max_retries=1)
                channel = self._connection.channel()
                try:
                    return channel.queue_declare(DEAD_LETTER_QUEUE, passive=True).message_count
                finally:
                    channel.close()
            except Exception as exc:
                if getattr(exc, "code", None) == 404:  # never declared here: nothing was ever parked
                    return 0
                log.debug("dead-letter depth unavailable", exc_info=True)
                self.close()
                return None

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken: nothing left to release
                log.debug("closing the dead-letter probe failed", exc_info=True)
            self._connection = None


class StateCollector(Collector):
    """Read at every scrape: the outbox, the dead-letter queue, the service's own figures."""

    def __init__(self, service: str, store: Store | None, probe: DeadLetterProbe,
                 collect: MetricsCollector | None):
        self.service = service
        self.store = store
        self.probe = probe
        self.collect_service = collect

    def collect(self) -> Iterator[Any]:
        depth = self.probe.depth()
        if depth is not None:
            gauge = GaugeMetricFamily("dead_letter_queue_messages",
                                      "Messages parked in the dead-letter queue (shared by all services)",
                                      labels=["service"])
            gauge.add_metric([self.service], depth)
            yield gauge
        if self.store is None:
            if self.collect_service is not None:
                yield from self.collect_service(None)
            return
        try:
            with self.store.Session() as session:
                yield from self._outbox(session)
                if self.collect_service is not None:
                    yield from self.collect_service(session)
        except Exception:  # a scrape during a database outage: report what we have
            log.warning("could not read %s's database for metrics", self.service, exc_info=True)

    def _outbox(self, session: Session) -> Iterator[Any]:
        outbox = self.store.outbox
        backlog, oldest = session.execute(
            select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
        ).one()
        gauge = GaugeMetricFamily("outbox_backlog", "Committed events not yet published", labels=["service"])
        gauge.add_metric([self.service], backlog)
        yield gauge
        age = GaugeMetricFamily("outbox_oldest_unpublished_age_seconds",
                                "Age of the oldest unpublished event (0 when none)", labels=["service"])
        if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC from func.min
            oldest = oldest.replace(tzinfo=UTC)
        age.add_metric([self.service], 0 if oldest is None else max(time.time() - oldest.timestamp(), 0))
        yield age


class Telemetry(DependencyProvider):
    def __init__(self, collect: MetricsCollector | None = None, result_id: str | None = None,
                 call_log_level: int = logging.INFO):
        """``collect(session)`` yields the service's own metric families at each scrape;
        ``result_id`` names the id a result's ``id`` is (``"order_id"`` for orders);
        ``call_log_level`` is the level of the line a successful call logs (DEBUG for a service
        whose every call is routine, like the Kafka sink's thousands per second)."""
        self.collect = collect
        self.result_id = result_id
        self.call_log_level = call_log_level
        self._calls: dict[Any, tuple[float, Any, str]] = {}
        self._server: Any = None
        self._socket: Any = None

    def setup(self) -> None:
        service = self.container.service_name
        set_process_service(service)
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "nameko_entrypoint_duration_seconds", "Time a worker took, by entrypoint",
            ["service", "kind", "method"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self.errors = Counter(
            "nameko_entrypoint_errors", "Workers that ended in an error, by entrypoint and error type; "
            "expected=true for typed answers (NotFound, ...), false for faults",
            ["service", "kind", "method", "error", "expected"], registry=self.registry,
        )
        store = next((dep for dep in self.container.dependencies if isinstance(dep, Store)), None)
        self.probe = DeadLetterProbe(self.container.config["AMQP_URI"])
        self.registry.register(StateCollector(service, store, self.probe, self.collect))
        self.port = metrics_port(self.container.config, service)

    def start(self) -> None:
        if self.port is None:
            return
        try:
            self._socket = eventlet.listen(("0.0.0.0", self.port))
        except OSError as exc:
            # metrics are not worth failing the service for; Prometheus shows the target down
            log.error("cannot serve /metrics on port %s: %s", self.port, exc)
            return
        app = make_wsgi_app(self.registry)
        self._server = eventlet.spawn(eventlet.wsgi.server, self._socket, app, log_output=False)
        log.info("serving /metrics on port %s", self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.kill()
            self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.probe.close()

    kill = stop

    def worker_setup(self, worker_ctx: Any) -> None:
        kind = entrypoint_kind(worker_ctx.entrypoint)
        token = bind(service=self.container.service_name, kind=kind,
                     method=worker_ctx.entrypoint.method_name, worker_ctx=worker_ctx,
                     **call_fields(worker_ctx, kind))
        self._calls[worker_ctx] = (time.perf_counter(), token, kind)

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started, _token, kind = self._calls[worker_ctx]
        seconds = time.perf_counter() - started
        service, method = self.container.service_name, worker_ctx.entrypoint.method_name
        self.latency.labels(service, kind, method).observe(seconds)
        extra: dict[str, Any] = {"duration_ms": round(seconds * 1000, 3),
                                 **result_ids(result, self.result_id)}
        # a timer's tick, and a batch whose events each log their own line, say nothing a search needs
        level = logging.DEBUG if kind in ("timer", "event_batch") else self.call_log_level
        outcome = "ok"
        if exc_info is not None:
            error = exc_info[1]
            expected = kind == "rpc" and (isinstance(error, CALLER_ERRORS) or (
                isinstance(error, ServiceError) and not isinstance(error, InternalError)))
            self.errors.labels(service, kind, method, type(error).__name__, str(expected).lower()).inc()
            outcome = f"failed: {type(error).__name__}: {error}"
            extra.update(outcome="error", error=type(error).__name__)
            if not expected:
                level = logging.ERROR
        else:
            extra["outcome"] = "ok"
        log.log(level, "%s %s.%s %s in %.1f ms", kind, service, method, outcome, seconds * 1000, extra=extra)

    def worker_teardown(self, worker_ctx: Any) -> None:
        _started, token, _kind = self._calls.pop(worker_ctx)
        unbind(token)
