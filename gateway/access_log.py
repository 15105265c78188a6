"""The gateway's log context and its one access line per request (see services.common.logs).

When a request starts, the fields every record carries are bound for it:
``service="gateway"``, ``kind="http"``, the X-Request-ID as ``correlation_id``
(the id the services log the request's work under, so one search finds the whole
trace), ``method`` as ``"<HTTP method> <url rule>"`` (the rule, not the path, so
requests for different ids are the same method; the path when no rule matched)
and the order id in the URL. When the response is ready, one INFO line records
its ``status`` and ``duration_ms``, with the caller's customer id (the token's
subject) when the request carried a valid token. The context is unbound when the
request context is torn down, so the thread's next request starts clean.

Logging itself is configured once per gunicorn worker (gateway/gunicorn_conf.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, request

from gateway.auth import User
from services.common.logs import bind, unbind

log = logging.getLogger(__name__)


def _bind_context() -> None:
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    order_id = (request.view_args or {}).get("order_id")
    g.log_started = time.perf_counter()
    g.log_token = bind(service="gateway", kind="http", correlation_id=g.request_id,
                       method=f"{request.method} {rule}", order_id=order_id)


def _access_line(response: Response) -> Response:
    milliseconds = (time.perf_counter() - g.log_started) * 1000
    extra: dict[str, Any] = {"duration_ms": round(milliseconds, 3), "status": response.status_code}
    # only a token some part of the request already verified: never decode one just for a log line
    user = g.get("auth_user")
    if isinstance(user, User):
        extra["customer_id"] = user.id
    log.info("%s %s %d in %.1f ms", request.method, request.path, response.status_code, milliseconds,
             extra=extra)
    return response


def _unbind_context(_error: BaseException | None) -> None:
    # absent when a request context was pushed without being dispatched (app.test_request_context)
    token = g.pop("log_token", None)
    if token is not None:
        unbind(token)


def init_access_log(app: Flask) -> None:
    """Register after gateway.correlation (the request id must be assigned first).

    after_request functions run in reverse order of registration, so registering this
    early makes the access line one of the last things a request does: its duration
    covers the other handlers.
    """
    app.before_request(_bind_context)
    app.after_request(_access_line)
    app.teardown_request(_unbind_context)
