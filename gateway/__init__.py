"""The HTTP API gateway: a Flask application in front of the Nameko services.

``create_app()`` builds it from the environment (see gateway/config.py and
docs/gateway.md); gunicorn serves it with ``gateway/gunicorn_conf.py``.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from gateway.access_log import init_access_log
from gateway.blueprints import ALL_BLUEPRINTS, API_BLUEPRINTS, AUTH_BLUEPRINTS
from gateway.breakers import Breakers
from gateway.config import Settings
from gateway.correlation import init_correlation
from gateway.errors import ApiError, register_error_handlers
from gateway.idempotency import MemoryStore, RedisStore
from gateway.metrics import init_metrics
from gateway.ratelimit import init_limiter
from gateway.rpc import RpcClient, RpcPool, Transport
from gateway.schemas import MAX_ID
from gateway.skus import ProductRefConverter
from services.common.config import SERVICES as DOMAIN_SERVICES

log = logging.getLogger(__name__)

#: reported by /ready but not required: analytics runs only where Java does (docs/analytics.md)
OPTIONAL_SERVICES = ("analytics",)
#: the downstream services, each behind its own circuit breaker
SERVICES = DOMAIN_SERVICES + OPTIONAL_SERVICES


def create_app(settings: Settings | None = None, *, transport: Transport | None = None,
               redis: Any = None) -> Flask:
    """Build the gateway. Tests pass ``settings`` and a fake ``transport`` instead of RabbitMQ."""
    settings = (settings or Settings.from_env()).checked()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length,
        JSON_SORT_KEYS=False,
        RETRY_AFTER_SECONDS=1,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]

    if redis is None and settings.redis_url:
        import redis as redis_lib

        redis = redis_lib.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2,
                                         health_check_interval=30)

    init_correlation(app)
    init_access_log(app)
    app.before_request(_ids_in_range)
    app.after_request(_security_headers)
    register_error_handlers(app)
    metrics = init_metrics(app)
    breakers = Breakers(
        SERVICES,
        fail_max=settings.breaker_fail_max,
        reset_timeout=settings.breaker_reset_timeout,
        registry=metrics.registry,
        redis=redis,
        namespace=f"{settings.redis_namespace}:breaker",
        trial_seconds=settings.rpc_timeout + 5,
    )
    if transport is None:
        pool = RpcPool(settings.amqp_uri, settings.rpc_pool_size, settings.rpc_timeout)
        atexit.register(pool.close)
        transport = pool
    app.extensions.update({
        "gateway.settings": settings,
        "gateway.services": SERVICES,
        "gateway.optional_services": OPTIONAL_SERVICES,
        "gateway.rpc": RpcClient(transport, breakers, settings.rpc_timeout),
        "gateway.metrics": metrics,
        "gateway.idempotency": (RedisStore(redis, f"{settings.redis_namespace}")
                                if redis is not None else MemoryStore()),
        "gateway.redis": redis,
    })
    app.extensions["gateway.limiter"] = init_limiter(app, settings, API_BLUEPRINTS, AUTH_BLUEPRINTS)
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["product"] = ProductRefConverter
    for blueprint in ALL_BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


class IdConverter(IntegerConverter):
    """``<id:name>``: a database id; :func:`_ids_in_range` answers 404 outside 1..2**31-1.

    (werkzeug's own ``min``/``max`` would answer 405 for out-of-range ids on paths that
    have routes for other methods.)
    """


def _ids_in_range() -> None:
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and not 1 <= value <= MAX_ID:
            raise ApiError("not-found", f"No such resource: {request.path} ({name} out of range)")


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
