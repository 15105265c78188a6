"""Calling the Nameko services: a fixed pool of standalone cluster proxies.

Each gunicorn worker process owns one ``RpcPool`` of ``size`` slots. A slot
holds a started ``ClusterRpcProxy`` (its own AMQP connection and exclusive
reply queue), created the first time the slot is used and then reused by
every later request; a request borrows a proxy for one call, so a proxy is
only ever used by one thread at a time (nameko's standalone proxy is not
thread-safe). Nothing is set up per request.

Every call:
  * carries the request's X-Request-ID as ``correlation_id`` context data, which
    nameko sends as the ``nameko.correlation_id`` header, so the service's
    worker (and every event it emits) carries it;
  * waits at most ``timeout`` seconds for the reply (``ServiceUnavailable``
    after that), and the request message itself expires in the broker after
    the same time, so a service that was down does not execute requests whose
    caller gave up long ago;
  * goes through the service's circuit breaker (``gateway.breakers``).

A proxy whose connection broke is dropped and its slot refilled lazily; one whose
connection the broker closed while it sat idle in the pool is found out before
it is lent (``PooledProxy.is_alive``), so no request goes out through it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
from collections.abc import Iterator
from typing import Any, Protocol

from amqp.exceptions import ConnectionError as AmqpConnectionError
from flask import current_app, g, request
from kombu import pools
from kombu.exceptions import OperationalError
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.rpc import ServiceProxy
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.breakers import BreakerOpen, Breakers
from gateway.errors import ApiError, from_service_error, retry_after
from services.common import errors as svc

log = logging.getLogger(__name__)

#: AMQP delivery mode of RPC requests (nameko's default, persistent, costs a disk sync per call)
TRANSIENT = 1
#: HTTP methods whose RPCs only read, so a call that never reached the service may be repeated
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the transport failed (not the service's answer): the proxy is dropped
TRANSPORT_ERRORS = (socket.error, AmqpConnectionError, OperationalError, RuntimeError, OSError)
#: how long PooledProxy.is_alive reads frames that were already waiting on an idle connection
PENDING_READ_SECONDS = 0.001


class Transport(Protocol):
    """What the gateway needs from the RPC layer; unit tests substitute a fake."""

    def call(self, service: str, method: str, args: tuple, kwargs: dict, *,
             correlation_id: str | None, timeout: float, safe: bool = False) -> Any: ...

    def consumers(self, services: list[str]) -> dict[str, int]: ...

    def close(self) -> None: ...


class PooledProxy:
    """One started ClusterRpcProxy: a connection and a reply queue."""

    def __init__(self, config: dict[str, Any], timeout: float):
        self._standalone = ClusterRpcProxy(config, timeout=timeout)
        self._cluster = self._standalone.start()
        self._worker_ctx = self._standalone._worker_ctx
        self._listener = self._standalone._reply_listener
        self._services: dict[tuple[str, float], ServiceProxy] = {}

    def call(self, service: str, method: str, args: tuple, kwargs: dict, *,
             correlation_id: str | None, timeout: float) -> Any:
        self._worker_ctx.data.clear()
        if correlation_id:
            self._worker_ctx.data["correlation_id"] = correlation_id
        self._listener.queue_consumer.timeout = timeout
        proxy = self._services.get((service, timeout))
        if proxy is None:
            # a request is transient (no fsync before the broker confirms it: the caller waits at
            # most `timeout` anyway) and expires in the queue once nobody waits for its reply
            proxy = ServiceProxy(self._worker_ctx, service, self._listener, expiration=timeout,
                                 delivery_mode=TRANSIENT)
            self._services[(service, timeout)] = proxy
        try:
            return getattr(proxy, method)(*args, **kwargs)
        finally:
            self._drop_stale_replies()

    def _drop_stale_replies(self) -> None:
        """Ack and forget replies that arrived after their call timed out."""
        consumer = self._listener.queue_consumer
        pending = self._listener._reply_events
        for correlation_id in [c for c in consumer.replies if c not in pending]:
            _body, message = consumer.replies.pop(correlation_id)
            with contextlib.suppress(Exception):
                message.ack()

    def is_alive(self) -> bool:
        """False once the broker has closed this proxy's connection (it restarted, or dropped it).

        nameko only learns that when it next reads, after the request went out; by then the reply
        may have been published to a reply queue that expired while nobody consumed it, and the
        call waits out its whole timeout. One non-blocking peek at the socket tells first: nothing
        to read is the normal, idle state; end of file, or a frame nobody waited for that turns out
        to be the broker's Connection.Close, means dead. Late replies read here are kept for
        ``_drop_stale_replies``."""
        connection = self._listener.queue_consumer.connection
        try:
            sock = connection.connection.transport.sock
            if not sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                return False
        except BlockingIOError:
            return True
        except (*TRANSPORT_ERRORS, AttributeError):
            return False
        try:
            while True:
                connection.drain_events(timeout=PENDING_READ_SECONDS)
        except TimeoutError:
            return True
        except Exception:
            return False

    def consumers(self, services: list[str]) -> dict[str, int]:
        """How many workers consume each service's RPC queue (-1: no such queue)."""
        connection = self._listener.queue_consumer.connection
        counts = {}
        for service in services:
            channel = connection.channel()
            try:
                _name, _messages, consumers = channel.queue_declare(f"rpc-{service}", passive=True)
                counts[service] = consumers
            except Exception:
                counts[service] = -1
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
        return counts

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._standalone.stop()


class RpcPool:
    """A fixed number of proxies shared by all the request threads of a worker."""

    def __init__(self, amqp_uri: str, size: int, timeout: float, wait_seconds: float | None = None):
        self._config = {"AMQP_URI": amqp_uri}
        self._timeout = timeout
        self._wait = timeout if wait_seconds is None else wait_seconds
        self._slots: queue.LifoQueue[PooledProxy | None] = queue.LifoQueue(maxsize=size)
        for _ in range(size):
            self._slots.put(None)
        # nameko publishes through kombu's producer pool; let every slot publish at once
        if pools.get_limit() < size:
            pools.set_limit(size)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[PooledProxy]:
        try:
            proxy = self._slots.get(timeout=self._wait)
        except queue.Empty:
            raise svc.ServiceUnavailable("no RPC connection free in time") from None
        try:
            if proxy is not None and not proxy.is_alive():
                log.info("replacing an RPC connection the broker closed")
                proxy.stop()
                proxy = None
            if proxy is None:
                proxy = PooledProxy(self._config, self._timeout)
            yield proxy
        except TRANSPORT_ERRORS:
            # the connection broke (not the service's answer): the slot gets a fresh proxy next time
            if proxy is not None:
                proxy.stop()
                proxy = None
            raise
        finally:
            self._slots.put(proxy)

    def call(self, service: str, method: str, args: tuple, kwargs: dict, *,
             correlation_id: str | None, timeout: float, safe: bool = False) -> Any:
        """``safe`` calls (made for GET requests: reads) are retried once on a fresh connection
        when the pooled one turns out to be broken, e.g. after a broker restart."""
        attempts = 2 if safe else 1
        for attempt in range(attempts):
            try:
                with self.borrow() as proxy:
                    return proxy.call(service, method, args, kwargs, correlation_id=correlation_id,
                                      timeout=timeout)
            except RpcTimeout:
                raise svc.ServiceUnavailable(f"{service}.{method} timed out after {timeout}s") from None
            except UnknownService:
                raise svc.ServiceUnavailable(f"{service} is not running") from None
            except TRANSPORT_ERRORS as exc:
                if attempt + 1 < attempts:
                    log.warning("retrying %s.%s on a fresh connection: %s", service, method, exc)
                    continue
                raise svc.ServiceUnavailable(f"{service}.{method}: broker unreachable ({exc})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def consumers(self, services: list[str]) -> dict[str, int]:
        for attempt in range(2):  # a pooled connection may be stale after a broker restart
            try:
                with self.borrow() as proxy:
                    return proxy.consumers(services)
            except TRANSPORT_ERRORS:
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        while True:
            try:
                proxy = self._slots.get_nowait()
            except queue.Empty:
                return
            if proxy is not None:
                proxy.stop()


class RpcClient:
    """Views call services through this: breaker, timeout, correlation id, error mapping."""

    def __init__(self, transport: Transport, breakers: Breakers, timeout: float):
        self.transport = transport
        self.breakers = breakers
        self.timeout = timeout

    def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        breaker = self.breakers[service]
        correlation_id = getattr(g, "request_id", None)
        try:
            return breaker.call(self.transport.call, service, method, args, kwargs,
                                correlation_id=correlation_id, timeout=self.timeout,
                                safe=request.method in SAFE_METHODS)
        except BreakerOpen as exc:
            raise ApiError(
                "service-unavailable",
                f"The {service} service is failing; the gateway stopped calling it for now.",
                headers=retry_after(exc.retry_after),
            ) from None
        except ApiError:
            raise
        except Exception as exc:
            # this failure may just have opened the breaker: then retry once it lets a trial through
            wait = breaker.retry_after() if breaker.current_state != "closed" else min(self.timeout, 5)
            raise from_service_error(exc, wait) from None


def call(service: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``service.method`` for the current request."""
    client: RpcClient = current_app.extensions["gateway.rpc"]
    return client.call(service, method, *args, **kwargs)
