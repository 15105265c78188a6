"""Every error leaves the gateway as ``application/problem+json`` (RFC 9457).

A problem's ``type`` is a stable URI per kind of error; clients switch on it,
never on ``detail``. Typed service errors map to HTTP statuses here and only
here. Anything unexpected is logged with its traceback and answered with a
500 problem that carries a reference id, never the traceback itself.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

import pybreaker
from flask import Flask, Response, g, json, request
from nameko.exceptions import (
    IncorrectSignature,
    MalformedRequest,
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from services.common import errors as svc

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://errors.ecommerce.example/"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str

    @property
    def uri(self) -> str:
        return TYPE_BASE + self.slug


#: every kind of problem the gateway answers with; the OpenAPI document lists them too
PROBLEM_TYPES: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        ProblemType("malformed-request", 400, "Malformed request"),
        ProblemType("unauthorized", 401, "Authentication required"),
        ProblemType("invalid-token", 401, "Invalid or expired token"),
        ProblemType("invalid-credentials", 401, "Invalid credentials"),
        ProblemType("forbidden", 403, "Forbidden"),
        ProblemType("not-found", 404, "Not found"),
        ProblemType("method-not-allowed", 405, "Method not allowed"),
        ProblemType("not-acceptable", 406, "Not acceptable"),
        ProblemType("conflict", 409, "Conflict"),
        ProblemType("out-of-stock", 409, "Out of stock"),
        ProblemType("payment-declined", 409, "Payment declined"),
        ProblemType("idempotency-in-progress", 409, "A request with this Idempotency-Key is in progress"),
        ProblemType("payload-too-large", 413, "Request body too large"),
        ProblemType("unsupported-media-type", 415, "Unsupported media type"),
        ProblemType("validation", 422, "Validation failed"),
        ProblemType("idempotency-key-reused", 422, "Idempotency-Key reused with a different request"),
        ProblemType("rate-limited", 429, "Too many requests"),
        ProblemType("internal", 500, "Internal error"),
        ProblemType("service-unavailable", 503, "Service unavailable"),
    )
}

#: werkzeug's HTTP errors that can happen before a view runs
HTTP_STATUS_TYPES = {
    400: "malformed-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    429: "rate-limited",
    503: "service-unavailable",
}


class ApiError(Exception):
    """An error the gateway answers on purpose."""

    def __init__(
        self,
        slug: str,
        detail: str | None = None,
        *,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(detail or PROBLEM_TYPES[slug].title)
        self.problem = PROBLEM_TYPES[slug]
        self.detail = detail or self.problem.title
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra or {}


def validation_error(fields: dict[str, Any], detail: str = "The request has invalid fields.") -> ApiError:
    return ApiError("validation", detail, fields=fields)


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def problem_response(error: ApiError) -> Response:
    body: dict[str, Any] = {
        "type": error.problem.uri,
        "title": error.problem.title,
        "status": error.problem.status,
        "detail": error.detail,
        "instance": request.path if request else None,
        "request_id": getattr(g, "request_id", None),
    }
    if error.fields is not None:
        body["fields"] = error.fields
    body.update(error.extra)
    response = Response(json.dumps(body), status=error.problem.status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _details(exc: svc.ServiceError) -> dict[str, Any]:
    """A service error's details whichever way they travelled (dict, or JSON text)."""
    try:
        details = exc.details
    except (ValueError, TypeError, IndexError):
        return {}
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except ValueError:
            return {}
    return details if isinstance(details, dict) else {}


def from_service_error(exc: BaseException, retry_seconds: float) -> ApiError:
    """Map a typed service (or transport) error to the problem the client sees."""
    if isinstance(exc, svc.ValidationFailed):
        fields = _details(exc).get("fields")
        return ApiError("validation", exc.message, fields=fields if isinstance(fields, dict) else {})
    if isinstance(exc, svc.NotFound):
        return ApiError("not-found", exc.message)
    if isinstance(exc, svc.OutOfStock):
        return ApiError("out-of-stock", exc.message, extra=_details(exc))
    if isinstance(exc, svc.PaymentDeclined):
        return ApiError("payment-declined", exc.message)
    if isinstance(exc, svc.Conflict):
        return ApiError("conflict", exc.message)
    if isinstance(exc, svc.Unauthorized):
        return ApiError("invalid-credentials", exc.message)
    if isinstance(exc, svc.Forbidden):
        return ApiError("forbidden", exc.message)
    if isinstance(exc, (svc.ServiceUnavailable, RpcTimeout, UnknownService)):
        return ApiError("service-unavailable", "A service did not answer in time; retry later.",
                        headers=retry_after(retry_seconds))
    if isinstance(exc, pybreaker.CircuitBreakerError):
        return ApiError("service-unavailable", "A service is failing; the gateway is not calling it for now.",
                        headers=retry_after(retry_seconds))
    if isinstance(exc, svc.InternalError):
        return ApiError("internal", exc.message)
    return _internal(exc)


def _internal(exc: BaseException) -> ApiError:
    reference = uuid.uuid4().hex[:12]
    # the record carries the request's correlation id from the log context (gateway/access_log.py)
    log.error("unexpected error answering %s %s (reference %s)", request.method, request.path, reference,
              exc_info=exc)
    return ApiError("internal", f"An unexpected error occurred (reference {reference}).",
                    extra={"reference": reference})


#: what a typed service error or the RPC layer may raise into a view
SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    svc.ServiceError,
    pybreaker.CircuitBreakerError,
    RpcTimeout,
    UnknownService,
    RemoteError,
    IncorrectSignature,
    MethodNotFound,
    MalformedRequest,
)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return problem_response(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        slug = HTTP_STATUS_TYPES.get(status, "internal" if status >= 500 else "malformed-request")
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))  # type: ignore[arg-type]
        detail = {
            404: f"No such resource: {request.path}",
            405: f"{request.method} is not allowed on {request.path}.",
            413: f"The request body exceeds {app.config.get('MAX_CONTENT_LENGTH')} bytes.",
        }.get(status, PROBLEM_TYPES[slug].title)
        error = ApiError(slug, detail, headers=headers)
        response = problem_response(error)
        response.status_code = status
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, RedisError):
            log.error("Redis is unavailable: %s", exc)
            return problem_response(ApiError("service-unavailable", "A gateway dependency is unavailable.",
                                             headers=retry_after(5)))
        if isinstance(exc, SERVICE_ERRORS):
            return problem_response(from_service_error(exc, app.config["RETRY_AFTER_SECONDS"]))
        return problem_response(_internal(exc))
