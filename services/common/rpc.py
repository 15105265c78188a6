"""RPC both ways: an entrypoint that never leaks internals, and a client with a deadline.

``rpc`` replaces nameko's decorator. A ``ServiceError`` crosses to the caller
as its own type; anything else is logged with its traceback here and reaches
the caller as an ``InternalError`` carrying only a reference id.

Replies are published transient and without publisher confirms (nameko's
default is persistent and confirmed, which makes every call wait for the
broker's confirm of its reply). Every caller waits for its reply with a
timeout (seconds) that no broker restart fits into, so a reply lost with the
broker is a caller timeout, which every caller already handles.

``RemoteService`` is an ``RpcProxy`` whose calls give up after a timeout with
``ServiceUnavailable``, so a dead peer never hangs a saga step. Its requests
are transient too and expire in the queue after that timeout, so a request
nobody waits for any more is not executed late (the gateway's pool does the same).
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import IncorrectSignature, MalformedRequest, MethodNotFound, UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import Responder, Rpc, RpcProxy, get_rpc_exchange

from services.common.errors import InternalError, ServiceError, ServiceUnavailable

log = logging.getLogger(__name__)

#: errors nameko itself raises for a bad call; they carry no internals
CALLER_ERRORS = (IncorrectSignature, MalformedRequest, MethodNotFound)


class ReplyPublisher(Publisher):
    """Publishes replies transient, without waiting for the broker's confirm."""

    use_confirms = False
    delivery_mode = NON_PERSISTENT
    # a dict of its own: Publisher.publish writes confirm_publish into the class's dict, and kombu keys
    # its connection pools by these options, so replies get pooled connections of their own
    transport_options = DEFAULT_TRANSPORT_OPTIONS.copy()


class ReplyResponder(Responder):
    publisher_cls = ReplyPublisher


class GuardedRpc(Rpc):
    def __init__(self, expected_exceptions: Any = ServiceError, **kwargs: Any):
        # typed errors are answers, not faults: nameko logs them as warnings
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def handle_result(self, message: Any, worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        if exc_info is not None and not isinstance(exc_info[1], (ServiceError, *CALLER_ERRORS)):
            reference = uuid.uuid4().hex[:12]
            log.error("unexpected error in %s.%s (reference %s)", self.container.service_name,
                      self.method_name, reference, exc_info=exc_info)
            error = InternalError(f"internal error (reference {reference})")
            exc_info = (InternalError, error, None)
        # nameko's RpcConsumer.handle_result, with the transient, unconfirmed reply
        config = self.container.config
        responder = ReplyResponder(
            config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.rpc_consumer.queue_consumer.ack_message(message)
        return result, exc_info


rpc = GuardedRpc.decorator

#: what a call to a stopped service or a lost broker raises
UNREACHABLE = (socket.error, AmqpConnectionError, OperationalError, UnknownService)


class RemoteServiceProxy:
    def __init__(self, proxy: Any, worker_ctx: Any, timeout: float):
        self._proxy = proxy
        self._worker_ctx = worker_ctx
        self._timeout = timeout

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            with eventlet.Timeout(self._timeout):
                return getattr(self._proxy, method).call_async(*args, **kwargs).result()
        except eventlet.Timeout:
            raise ServiceUnavailable(f"{self._proxy.service_name}.{method} timed out") from None
        except UNREACHABLE as exc:
            raise ServiceUnavailable(f"{self._proxy.service_name}.{method}: {exc}") from None


class RemoteService(RpcProxy):
    def __init__(self, target_service: str, timeout: float = 5.0, **options: Any):
        # transient (no disk write in the broker) and gone from the queue once the caller gave up
        options = {"delivery_mode": NON_PERSISTENT, "expiration": timeout, **options}
        super().__init__(target_service, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx: Any) -> RemoteServiceProxy:
        return RemoteServiceProxy(super().get_dependency(worker_ctx), worker_ctx, self.timeout)


class Correlation(DependencyProvider):
    """Read or set the running worker's correlation id.

    A worker that acts for several requests (a recovery timer resuming
    sagas) sets the id of the one it is working on, so its RPC calls and
    events carry the right one.
    """

    def get_dependency(self, worker_ctx: Any) -> Any:
        return CorrelationAccessor(worker_ctx)


class CorrelationAccessor:
    def __init__(self, worker_ctx: Any):
        self._worker_ctx = worker_ctx

    @property
    def id(self) -> str | None:
        return self._worker_ctx.data.get("correlation_id")

    @id.setter
    def id(self, value: str | None) -> None:
        if value is None:
            # no id at all rather than a None one, which nameko would drop from every message's
            # headers with a warning each time
            self._worker_ctx.data.pop("correlation_id", None)
        else:
            self._worker_ctx.data["correlation_id"] = value
