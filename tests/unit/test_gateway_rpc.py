"""The RPC pool: fixed size, proxies reused across requests, correlation id and timeout per call."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from nameko.exceptions import RpcTimeout, UnknownService

from gateway import rpc as gateway_rpc
from gateway.rpc import RpcPool
from services.common import errors as svc

STARTED: list[FakeStandalone] = []


class FakeSocket:
    """The reply connection's socket: idle (nothing to read) until the broker closes it."""

    closed_by_broker = False

    def recv(self, size: int, flags: int) -> bytes:
        if self.closed_by_broker:
            return b""
        raise BlockingIOError


class FakeStandalone:
    """Stands in for nameko's ClusterRpcProxy: counts connections, records what calls carried."""

    def __init__(self, config: dict[str, Any], timeout: float):
        self.config = config
        self._worker_ctx = SimpleNamespace(data={})
        self.socket = FakeSocket()
        connection = SimpleNamespace(connection=SimpleNamespace(transport=SimpleNamespace(sock=self.socket)))
        self._reply_listener = SimpleNamespace(
            queue_consumer=SimpleNamespace(timeout=timeout, replies={}, connection=connection),
            _reply_events={})
        self.stopped = False
        STARTED.append(self)

    def start(self) -> Any:
        return object()

    def stop(self) -> None:
        self.stopped = True


class FakeServiceProxy:
    seen: list[dict[str, Any]] = []
    behaviour: Any = None

    def __init__(self, worker_ctx: Any, service: str, listener: Any, **options: Any):
        self.worker_ctx, self.service, self.listener, self.options = worker_ctx, service, listener, options

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            FakeServiceProxy.seen.append({
                "service": self.service, "method": method, "args": args, "kwargs": kwargs,
                "data": dict(self.worker_ctx.data), "timeout": self.listener.queue_consumer.timeout,
                "expiration": self.options.get("expiration"),
                "delivery_mode": self.options.get("delivery_mode"),
            })
            behaviour = FakeServiceProxy.behaviour
            if isinstance(behaviour, BaseException):
                raise behaviour
            if callable(behaviour):
                return behaviour()
            return {"ok": True}

        return call


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    STARTED.clear()
    FakeServiceProxy.seen = []
    FakeServiceProxy.behaviour = None
    monkeypatch.setattr(gateway_rpc, "ClusterRpcProxy", FakeStandalone)
    monkeypatch.setattr(gateway_rpc, "ServiceProxy", FakeServiceProxy)


def call(pool: RpcPool, correlation_id: str = "req-1", timeout: float = 2.0) -> Any:
    return pool.call("catalog", "get_product", (1,), {}, correlation_id=correlation_id, timeout=timeout)


def test_proxies_are_created_once_and_reused() -> None:
    pool = RpcPool("pyamqp://x", size=2, timeout=2.0)
    for i in range(10):
        assert call(pool, f"req-{i}") == {"ok": True}
    assert len(STARTED) == 1  # sequential calls reuse one connection
    assert STARTED[0].config == {"AMQP_URI": "pyamqp://x"}


def test_each_call_carries_its_correlation_id_timeout_and_expiry() -> None:
    pool = RpcPool("pyamqp://x", size=1, timeout=2.0)
    call(pool, "first", timeout=1.5)
    call(pool, "second", timeout=3.0)
    first, second = FakeServiceProxy.seen
    assert first["data"] == {"correlation_id": "first"} and second["data"] == {"correlation_id": "second"}
    assert (first["timeout"], first["expiration"]) == (1.5, 1.5)
    assert (second["timeout"], second["expiration"]) == (3.0, 3.0)
    assert first["delivery_mode"] == 1  # transient: no disk sync before the broker confirms


def test_the_pool_never_grows_past_its_size() -> None:
    pool = RpcPool("pyamqp://x", size=3, timeout=2.0, wait_seconds=0.2)
    release = threading.Event()
    FakeServiceProxy.behaviour = lambda: release.wait(2) and {"ok": True}
    threads = [threading.Thread(target=call, args=(pool,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    with pytest.raises(svc.ServiceUnavailable):
        call(pool)  # every slot is busy: a fourth caller gives up after wait_seconds
    release.set()
    for thread in threads:
        thread.join()
    assert len(STARTED) == 3


@pytest.mark.parametrize(("raised", "message"), [
    (RpcTimeout(2.0), "timed out"),
    (UnknownService("catalog"), "not running"),
    (ConnectionResetError("broken pipe"), "broker unreachable"),
])
def test_transport_failures_become_service_unavailable(raised: Exception, message: str) -> None:
    pool = RpcPool("pyamqp://x", size=1, timeout=2.0)
    FakeServiceProxy.behaviour = raised
    with pytest.raises(svc.ServiceUnavailable, match=message):
        call(pool)


def test_a_broken_connection_is_replaced_but_a_service_error_keeps_it() -> None:
    pool = RpcPool("pyamqp://x", size=1, timeout=2.0)
    FakeServiceProxy.behaviour = svc.NotFound("nope")
    with pytest.raises(svc.NotFound):
        call(pool)
    FakeServiceProxy.behaviour = ConnectionResetError("gone")
    with pytest.raises(svc.ServiceUnavailable):
        call(pool)
    assert STARTED[0].stopped
    FakeServiceProxy.behaviour = None
    assert call(pool) == {"ok": True}
    assert len(STARTED) == 2


def test_stale_replies_are_acknowledged_and_dropped() -> None:
    pool = RpcPool("pyamqp://x", size=1, timeout=2.0)
    call(pool)
    acked = []
    consumer = STARTED[0]._reply_listener.queue_consumer
    consumer.replies["late"] = ({}, SimpleNamespace(ack=lambda: acked.append("late")))
    call(pool)
    assert consumer.replies == {} and acked == ["late"]


def test_close_stops_every_proxy() -> None:
    pool = RpcPool("pyamqp://x", size=2, timeout=2.0)
    call(pool)
    pool.close()
    assert all(proxy.stopped for proxy in STARTED)


def test_reads_are_retried_once_on_a_fresh_connection_writes_are_not() -> None:
    pool = RpcPool("pyamqp://x", size=1, timeout=2.0)
    call(pool)
    broken = iter([ConnectionResetError("stale after a broker restart")])

    def flaky() -> Any:
        error = next(broken, None)
        if error is not None:
            raise error
        return {"ok": True}

    FakeServiceProxy.behaviour = flaky
    read = pool.call("catalog", "get_product", (1,), {}, correlation_id="r", timeout=2.0, safe=True)
    assert read == {"ok": True}
    assert len(STARTED) == 2
    broken = iter([ConnectionResetError("stale")])
    with pytest.raises(svc.ServiceUnavailable):
        pool.call("orders", "create_order", (), {}, correlation_id="r", timeout=2.0)


def test_a_proxy_whose_connection_the_broker_closed_is_replaced_before_the_call() -> None:
    pool = RpcPool("pyamqp://x", size=1, timeout=2.0)
    assert call(pool) == {"ok": True}
    STARTED[0].socket.closed_by_broker = True
    assert call(pool) == {"ok": True}
    assert len(STARTED) == 2 and STARTED[0].stopped and not STARTED[1].stopped
    assert len(FakeServiceProxy.seen) == 2  # no request went out through the dead proxy
