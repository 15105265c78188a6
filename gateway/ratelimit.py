"""Rate limits (flask-limiter): per user on /api, per client address on /auth.

Limits come from ``RATE_LIMIT_API`` and ``RATE_LIMIT_AUTH`` (limits' notation:
"100/second", "10 per minute", "5 per 10 seconds"). Counters live in Redis when
``REDIS_URL`` is set, so replicas share them; in memory otherwise. The one API
limit is shared by every /api route of a user; /health, /ready, /metrics and the
docs are not limited. A 429 is problem+json with Retry-After and X-RateLimit-*.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from flask import Blueprint, Flask, Response
from flask_limiter import HeaderNames, Limiter

from gateway.auth import client_ip, rate_limit_key
from gateway.config import Settings

LIMITER_RETRY_HEADER = "X-Limiter-Retry-After"


def init_limiter(app: Flask, settings: Settings, api: Iterable[Blueprint],
                 auth: Iterable[Blueprint]) -> Limiter:
    # registered before the limiter's own hook, so it runs after it (Flask runs them in reverse)
    app.after_request(_whole_retry_after)
    limiter = Limiter(
        key_func=rate_limit_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
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
