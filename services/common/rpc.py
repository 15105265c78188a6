"""RPC both ways: an entrypoint that never leaks internals, and a client with a deadline.

``rpc`` replaces nameko's decorator. A ``ServiceError`` crosses to the caller
as its own type; anything else is logged with its traceback here and reaches
the caller as an ``InternalError`` carrying only a reference id.

``RemoteService`` is an ``RpcProxy`` whose calls give up after a timeout with
``ServiceUnavailable``, so a dead peer never hangs a saga step.
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.exceptions import IncorrectSignature, MalformedRequest, MethodNotFound, UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcProxy

from services.common.errors import InternalError, ServiceError, ServiceUnavailable

log = logging.getLogger(__name__)

#: errors nameko itself raises for a bad call; they carry no internals
CALLER_ERRORS = (IncorrectSignature, MalformedRequest, MethodNotFound)


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
        return super().handle_result(message, worker_ctx, result, exc_info)


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
        self._worker_ctx.data["correlation_id"] = value
