"""One circuit breaker per downstream service (pybreaker).

A breaker counts consecutive *infrastructure* failures of its service:
timeouts, an unreachable broker or service, internal errors. Business answers
(NotFound, ValidationFailed, Conflict, ...) are answers, so they are excluded
and count as successes. After ``fail_max`` failures the breaker opens and
calls fail at once; after ``reset_timeout`` one trial call goes through
(half-open) and closes the breaker on success or opens it again on failure.

With ``REDIS_URL`` the state lives in Redis (``pybreaker.CircuitRedisStorage``),
so every worker and replica sees the same breaker.

pybreaker's own ``call`` holds the breaker's lock for the whole guarded call,
which would serialise every request to a service behind one lock in a threaded
worker. ``ServiceBreaker.call`` runs closed-state calls without it and lets a
single trial call through while half-open; everyone else fails fast.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pybreaker
from prometheus_client import CollectorRegistry, Gauge
from redis.exceptions import RedisError

from services.common import errors as svc

log = logging.getLogger(__name__)
T = TypeVar("T")

#: the gauge's value per state
STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}

#: answers, not failures: they never trip a breaker
BUSINESS_ERRORS: tuple[type[BaseException], ...] = (
    svc.ValidationFailed,
    svc.NotFound,
    svc.Conflict,
    svc.Unauthorized,
    svc.Forbidden,
)


class RedisStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage, minus the crash when Redis is down at startup, and minus a
    write per successful call.

    Its reads already fall back to "closed" while Redis is unreachable; the
    initial SETNX is retried by the first read that finds no state.

    pybreaker resets the shared failure counter with a ``SET`` after every
    successful call, although it is almost always 0 already. Here the state
    read every call starts with (``MGET`` of the state and the counter: still
    one round trip) also notes the counter, per thread, and a success resets it
    only when that read found failures. A failure recorded by another call
    while this one was in flight is then left for the next success to reset:
    successes still reset the count, as of when they started.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self._seen = threading.local()
        super().__init__(*args, **kwargs)

    def _initialize_redis_state(self, state: str) -> None:
        try:
            super()._initialize_redis_state(state)
        except RedisError as exc:
            log.warning("breaker storage: Redis unavailable at startup (%s); assuming closed", exc)

    @property
    def state(self) -> str:
        self._seen.counter = None
        try:
            state, counter = self._redis.mget(self._namespace("state"), self._namespace("fail_counter"))
        except RedisError:
            self.logger.exception("RedisError: falling back to default circuit state")
            return self._fallback_circuit_state
        if state is None:
            # missing (Redis restarted empty, the keys were flushed): re-initialise, as pybreaker does
            self._initialize_redis_state(self._fallback_circuit_state)
            return self._fallback_circuit_state
        self._seen.counter = int(counter or 0)
        return state.decode("utf-8")

    @state.setter
    def state(self, state: str) -> None:
        pybreaker.CircuitRedisStorage.state.fset(self, state)  # type: ignore[attr-defined]

    def increment_counter(self) -> None:
        self._seen.counter = None
        super().increment_counter()

    def reset_counter(self) -> None:
        if getattr(self._seen, "counter", None) == 0:
            return  # this call's state read found no failures to forget
        super().reset_counter()


class BreakerOpen(pybreaker.CircuitBreakerError):
    """The breaker refused the call; ``retry_after`` seconds until it lets one through."""

    def __init__(self, service: str, retry_after: float):
        super().__init__(f"circuit breaker for {service} is open")
        self.service = service
        self.retry_after = retry_after


class ServiceBreaker(pybreaker.CircuitBreaker):
    def __init__(self, *args: Any, redis: Any = None, trial_key: str | None = None,
                 trial_seconds: float = 10.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._trial_lock = threading.Lock()
        self._redis = redis
        self._trial_key = trial_key
        self._trial_ms = int(trial_seconds * 1000)

    def seconds_until_trial(self) -> float:
        """How long an open breaker keeps refusing calls (0 once a trial may go through)."""
        opened_at = self._state_storage.opened_at
        if opened_at is None:
            return 0.0
        return max(0.0, opened_at.timestamp() + self.reset_timeout - time.time())

    def retry_after(self) -> float:
        return max(1.0, math.ceil(self.seconds_until_trial()))

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        state = self.state  # re-read from the (possibly shared) storage
        if state.name == pybreaker.STATE_CLOSED:
            return self._guarded(state, func, *args, **kwargs)
        if state.name == pybreaker.STATE_OPEN and self.seconds_until_trial() > 0:
            raise BreakerOpen(self.name or "?", self.seconds_until_trial())
        if not self._acquire_trial():
            raise BreakerOpen(self.name or "?", self.retry_after())
        try:
            with self._lock:
                if self.state.name == pybreaker.STATE_OPEN:
                    self.half_open()
                state = self.state
            return self._guarded(state, func, *args, **kwargs)
        finally:
            self._release_trial()

    def _guarded(self, state: Any, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return state.call(func, *args, **kwargs)
        except pybreaker.CircuitBreakerError as exc:
            if isinstance(exc, BreakerOpen):
                raise
            # this very call tripped the breaker; its own failure is what the client hears about
            cause = exc.__context__
            if cause is not None:
                raise cause from None
            raise

    def _acquire_trial(self) -> bool:
        if not self._trial_lock.acquire(blocking=False):
            return False
        if self._redis is None or self._trial_key is None:
            return True
        try:
            if self._redis.set(self._trial_key, "1", nx=True, px=self._trial_ms):
                return True
        except Exception:  # Redis down: this process's lock alone decides
            log.warning("breaker %s: Redis unavailable for the trial token", self.name)
            return True
        self._trial_lock.release()
        return False

    def _release_trial(self) -> None:
        if self._redis is not None and self._trial_key is not None:
            try:
                self._redis.delete(self._trial_key)
            except Exception:
                log.warning("breaker %s: could not release the trial token", self.name)
        self._trial_lock.release()


class GaugeListener(pybreaker.CircuitBreakerListener):
    def __init__(self, gauge: Gauge):
        self.gauge = gauge

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        self.gauge.labels(service=cb.name).set(STATE_VALUES[new_state.name])
        if old_state is not None and old_state.name != new_state.name:
            log.warning("circuit breaker %s: %s -> %s", cb.name, old_state.name, new_state.name)


class Breakers:
    """The breakers of all downstream services, and their Prometheus gauge."""

    def __init__(self, services: Iterable[str], *, fail_max: int, reset_timeout: float,
                 registry: CollectorRegistry | None, redis: Any = None, namespace: str = "gateway",
                 trial_seconds: float = 10.0):
        self.gauge = Gauge(
            "gateway_circuit_breaker_state",
            "Circuit breaker state per downstream service (0 closed, 1 half-open, 2 open)",
            ["service"],
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        listener = GaugeListener(self.gauge)
        self._breakers: dict[str, ServiceBreaker] = {}
        for service in services:
            storage = (
                RedisStorage(pybreaker.STATE_CLOSED, redis, namespace=f"{namespace}:{service}")
                if redis is not None
                else pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
            )
            breaker = ServiceBreaker(
                fail_max=fail_max,
                reset_timeout=reset_timeout,
                exclude=list(BUSINESS_ERRORS),
                listeners=[listener],
                state_storage=storage,
                name=service,
                redis=redis,
                trial_key=f"{namespace}:{service}:trial",
                trial_seconds=trial_seconds,
            )
            self._breakers[service] = breaker
            self.gauge.labels(service=service).set(STATE_VALUES.get(breaker.current_state, 0))

    def __getitem__(self, service: str) -> ServiceBreaker:
        return self._breakers[service]

    def __iter__(self) -> Any:
        return iter(self._breakers.values())

    def refresh(self) -> dict[str, str]:
        """Re-read every state (another replica may have changed it); returns them."""
        states = {}
        for name, breaker in self._breakers.items():
            state = breaker.state.name
            self.gauge.labels(service=name).set(STATE_VALUES[state])
            states[name] = state
        return states
