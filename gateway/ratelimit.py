"""Rate limits (flask-limiter): per user on /api, per client address on /auth.

Limits come from ``RATE_LIMIT_API`` and ``RATE_LIMIT_AUTH`` (limits' notation:
"100/second", "10 per minute", "5 per 10 seconds"). Counters live in Redis when
``REDIS_URL`` is set, so replicas share them; in memory otherwise. The one API
limit is shared by every /api route of a user; /health, /ready, /metrics and the
docs are not limited. A 429 is problem+json with Retry-After and X-RateLimit-*.

In Redis, a request's count and its window's end come back from the one script that counts it
(``WindowRedisStorage``): limits' own Redis storage reads them again for the X-RateLimit-* headers,
two more round trips that were a third of the gateway's CPU per request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, Response
from flask_limiter import HeaderNames, Limiter
from limits.storage import RedisStorage

from gateway.auth import client_ip, rate_limit_key
from gateway.config import Settings

LIMITER_RETRY_HEADER = "X-Limiter-Retry-After"
#: limits' storage scheme for WindowRedisStorage: the REDIS_URL with this prefix
SCHEME_PREFIX = "gateway+"

#: count a hit and answer the count with the seconds the window has left, in one round trip
INCR_EXPIRE_TTL = """
local current = redis.call("incrby", KEYS[1], tonumber(ARGV[2]))
if current == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""


class WindowRedisStorage(RedisStorage):
    """limits' Redis storage, remembering what this request's hits counted.

    A fixed window's hit is ``incr``; the headers then ask ``get`` and ``get_expiry`` of the same
    keys. Those are answered from what ``incr`` returned in this thread since ``forget()``, which runs
    before every request; any other key goes to Redis as before.
    """

    STORAGE_SCHEME = [f"{SCHEME_PREFIX}redis", f"{SCHEME_PREFIX}rediss"]
    #: per thread (a request's): key -> (its count, when its window ends)
    _counted = threading.local()

    def __init__(self, uri: str, **options: Any):
        super().__init__(uri.removeprefix(SCHEME_PREFIX), **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_expire_ttl = self.get_connection().register_script(INCR_EXPIRE_TTL)

    @classmethod
    def forget(cls) -> None:
        """A new request: what earlier ones counted is not its answer (flask-limiter creates its
        storage at the first limited request, so this reaches every instance through the class)."""
        cls._counted.windows = {}

    def _windows(self) -> dict[str, tuple[int, float]]:
        windows = getattr(self._counted, "windows", None)
        if windows is None:
            windows = self._counted.windows = {}
        return windows

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        count, ttl = self.lua_incr_expire_ttl([self.prefixed_key(key)], [expiry, amount])
        self._windows()[key] = (int(count), time.time() + max(int(ttl), 0))
        return int(count)

    def get(self, key: str) -> int:
        counted = self._windows().get(key)
        return counted[0] if counted else super().get(key)

    def get_expiry(self, key: str) -> float:
        counted = self._windows().get(key)
        return counted[1] if counted else super().get_expiry(key)


def init_limiter(app: Flask, settings: Settings, api: Iterable[Blueprint],
                 auth: Iterable[Blueprint]) -> Limiter:
    # registered before the limiter's own hook, so it runs after it (Flask runs them in reverse)
    app.after_request(_whole_retry_after)
    if settings.redis_url:
        # registered before the limiter's own check, so it runs first (before_request hooks run in order)
        app.before_request(WindowRedisStorage.forget)
    limiter = Limiter(
        key_func=rate_limit_key,
        app=app,
        storage_uri=f"{SCHEME_PREFIX}{settings.redis_url}" if settings.redis_url else "memory://",
        strategy="fixed-window",
        headers_enabled=True,
        key_prefix=f"{settings.redis_namespace}:ratelimit",
        enabled=settings.rate_limit_enabled,
        # Redis down: keep limiting, per process, rather than failing every request
        in_memory_fallback_enabled=True,
        # the limiter would put Retry-After on every limited response, 2xx included (and overwrite a
        # 503's); it writes it here instead and _whole_retry_after sets Retry-After on 429s only
        header_name_mapping={HeaderNames.RETRY_AFTER: LIMITER_RETRY_HEADER},
    )
    api_limit = limiter.shared_limit(settings.rate_limit_api, scope="api", key_func=rate_limit_key)
    auth_limit = limiter.shared_limit(settings.rate_limit_auth, scope="auth", key_func=client_ip)
    for blueprint in api:
        api_limit(blueprint)
    for blueprint in auth:
        auth_limit(blueprint)
    return limiter


def _whole_retry_after(response: Response) -> Response:
    """A 429's Retry-After: whole seconds until the window resets, rounded up, at least 1."""
    limiter_value = response.headers.pop(LIMITER_RETRY_HEADER, None)
    if response.status_code == 429:
        reset = response.headers.get("X-RateLimit-Reset")
        seconds = float(reset) - time.time() if reset else float(limiter_value or 1)
        response.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response
