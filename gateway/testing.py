"""Test doubles: a fake RPC transport and settings for building the app without RabbitMQ."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Settings

TEST_SECRET = "unit-test-secret-0123456789abcdefghijklmnop"


def settings_for_tests(**changes: Any) -> Settings:
    base = Settings(env="test", jwt_secret=TEST_SECRET, amqp_uri="memory://", rate_limit_api="1000/second",
                    rate_limit_auth="1000/second", rpc_timeout=0.5, breaker_fail_max=3,
                    breaker_reset_timeout=1.0, product_cache_seconds=0)
    return base.replace(**changes)


@dataclass
class Call:
    service: str
    method: str
    args: tuple
    kwargs: dict
    correlation_id: str | None


@dataclass
class FakeTransport:
    """Answers RPC calls from ``handlers[(service, method)]``: a value, an exception, or a callable."""

    handlers: dict[tuple[str, str], Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    consumer_counts: dict[str, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, service: str, method: str, answer: Any) -> FakeTransport:
        self.handlers[(service, method)] = answer
        return self

    def call(self, service: str, method: str, args: tuple, kwargs: dict, *,
             correlation_id: str | None, timeout: float, safe: bool = False) -> Any:
        with self._lock:
            self.calls.append(Call(service, method, args, kwargs, correlation_id))
        try:
            answer = self.handlers[(service, method)]
        except KeyError:
            raise AssertionError(f"unexpected RPC {service}.{method}{args}") from None
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, type) and issubclass(answer, BaseException):
            raise answer("fake")
        if callable(answer):
            return answer(*args, **kwargs)
        return answer

    def calls_to(self, service: str, method: str) -> list[Call]:
        return [c for c in self.calls if (c.service, c.method) == (service, method)]

    def consumers(self, services: list[str]) -> dict[str, int]:
        counts = self.consumer_counts or {}
        return {service: counts.get(service, 1) for service in services}

    def close(self) -> None:
        pass




def token_for(app: Any, user_id: int, role: str = "customer", **claims: Any) -> str:
    """A valid access token for ``user_id`` as the gateway would issue it."""
    from gateway.auth import issue_token

    return issue_token(app.extensions["gateway.settings"], {"id": user_id, "role": role, **claims})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
