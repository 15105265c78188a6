"""The OpenAPI 3 document, generated from the routes and their marshmallow schemas.

Every view carries an :func:`operation` description. The document walks the
Flask ``url_map``, so a route without a description is missing from it and a
unit test (tests/unit/test_gateway_openapi.py) compares both directions.
Error answers are added from what the operation does: a body can be
malformed (400), too large (413), of the wrong type (415) or invalid (422);
a protected route answers 401/403; every route can be rate limited (429) and
every route that calls a service can be unavailable (503).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

from gateway.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPES, TYPE_BASE
from gateway.schemas import MAX_ID, ProblemResponse
from gateway.skus import PRODUCT_REF_PATTERN

F = TypeVar("F", bound=Callable[..., Any])

API_TITLE = "E-commerce platform API"
API_VERSION = "1.0.0"
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
#: routes deliberately left out of the document (none: the app has no static folder)
SKIPPED_ENDPOINTS: set[str] = set()

ERROR_DESCRIPTIONS = {
    400: "Malformed request (e.g. the body is not valid JSON)",
    401: "Missing, invalid or expired bearer token, or wrong credentials",
    403: "The user's role does not allow this",
    404: "No such resource (or it belongs to someone else)",
    409: "Conflicts with the current state",
    413: "Request body too large",
    415: "The body is not application/json",
    422: "Validation failed; `fields` lists the invalid fields",
    429: "Rate limited; retry after `Retry-After` seconds",
    500: "Unexpected error; quote `reference`",
    503: "A service is unavailable (timeout or open circuit breaker); retry after `Retry-After` seconds",
}


@dataclass
class Operation:
    summary: str
    tag: str
    body: type[Schema] | None = None
    body_optional: bool = False
    query: type[Schema] | None = None
    responses: dict[int, tuple[type[Schema] | None, str]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    location: bool = False
    idempotent: bool = False
    rate_limited: bool = True
    calls_services: bool = True
    content_type: str = "application/json"
    description: str | None = None


def operation(summary: str, tag: str, **kwargs: Any) -> Callable[[F], F]:
    """Describe a view for the OpenAPI document (apply below ``@bp.route``)."""

    def decorate(view: F) -> F:
        view.__openapi__ = Operation(summary=summary, tag=tag, **kwargs)  # type: ignore[attr-defined]
        return view

    return decorate


_CONVERTER = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def openapi_path(rule: str) -> str:
    return _CONVERTER.sub(lambda m: "{" + m.group("name") + "}", rule)


def _path_parameters(rule: Any) -> list[dict[str, Any]]:
    parameters = []
    for converter, name in _converters(rule.rule):
        schema: dict[str, Any] = {"type": "string"}
        if converter in ("int", "id"):
            schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
        elif converter == "product":
            schema = {"type": "string", "pattern": f"^{PRODUCT_REF_PATTERN}$",
                      "description": "a product id (digits only) or a SKU"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _converters(rule: str) -> list[tuple[str, str]]:
    return [(m.group("converter") or "default", m.group("name")) for m in _CONVERTER.finditer(rule)]


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": "ProblemResponse"}},
    }
    if headers:
        response["headers"] = headers
    return response


def _header(description: str, kind: str = "integer", required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": kind}}


RATE_LIMIT_HEADERS = {
    "Retry-After": _header("Seconds until the window resets", required=True),
    "X-RateLimit-Limit": _header("Requests allowed in the window"),
    "X-RateLimit-Remaining": _header("Requests left in the window"),
    "X-RateLimit-Reset": _header("Unix time the window resets"),
}


def _operation_spec(op: Operation, view: Any, method: str, has_path_params: bool) -> dict[str, Any]:
    auth = getattr(view, "__auth__", None)
    spec: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": view.__name__}
    if op.description:
        spec["description"] = op.description
    parameters: list[dict[str, Any]] = []
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    if op.idempotent:
        parameters.append({
            "in": "header", "name": "Idempotency-Key", "required": False,
            "description": "Replays the first answer for a retried request; another body with the same"
                           " key is refused with 422",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x21-\x7e]+$"},
        })
    if parameters:
        spec["parameters"] = parameters
    if op.body is not None:
        spec["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": op.body}},
        }
    if auth is not None:
        spec["security"] = [{"bearerAuth": []}]

    responses: dict[str, Any] = {}
    for status, (schema, description) in op.responses.items():
        response: dict[str, Any] = {"description": description}
        if schema is not None:
            response["content"] = {op.content_type: {"schema": schema}}
        elif op.content_type != "application/json":
            response["content"] = {op.content_type: {"schema": {"type": "string"}}}
        if op.location and 200 <= status < 300:
            response["headers"] = {"Location": _header("Where the created resource lives", "string", True)}
        if op.idempotent and 200 <= status < 300:
            response.setdefault("headers", {})["Idempotent-Replayed"] = _header(
                "true when this is the stored answer to an earlier request with the same key", "string")
        responses[str(status)] = response

    errors = set(op.errors) | {500}
    if op.body is not None:
        errors |= {400, 413, 415, 422}
    if op.query is not None or op.idempotent:
        errors.add(422)
    if auth is not None:
        errors.add(401)
    if auth == "admin":
        errors.add(403)
    if has_path_params:
        errors.add(404)
    if op.rate_limited:
        errors.add(429)
    if op.calls_services:
        errors.add(503)
    for status in sorted(errors):
        if str(status) in responses:
            continue
        headers = None
        if status == 429:
            headers = RATE_LIMIT_HEADERS
        elif status == 503:
            headers = {"Retry-After": _header("Seconds to wait before retrying")}
        elif status == 401:
            headers = {"WWW-Authenticate": _header("Bearer challenge", "string")}
        responses[str(status)] = _problem(ERROR_DESCRIPTIONS[status], headers)
    spec["responses"] = responses
    return spec


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title=API_TITLE,
        version=API_VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "REST front door of the e-commerce platform. Every error is `application/problem+json`"
                f" with a stable `type` under {TYPE_BASE}: "
                + ", ".join(f"`{slug}` ({p.status})" for slug, p in PROBLEM_TYPES.items())
                + ". Every response carries `X-Request-ID` (sent or generated)."
            ),
        },
    )
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("ProblemResponse", schema=ProblemResponse)

    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in SKIPPED_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        op: Operation | None = getattr(view, "__openapi__", None)
        if op is None:
            continue
        path = openapi_path(rule.rule)
        path_params = _path_parameters(rule)
        for method in sorted((rule.methods or set()) - SKIPPED_METHODS):
            paths.setdefault(path, {"parameters": path_params, "operations": {}})
            paths[path]["operations"][method.lower()] = _operation_spec(op, view, method, bool(path_params))
    for path, item in paths.items():
        spec.path(path=path, operations=item["operations"], parameters=item["parameters"] or None)
    document = spec.to_dict()
    document["servers"] = [{"url": "/"}]
    return document


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch"}
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item
            if method in methods}


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    return {
        (openapi_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in SKIPPED_ENDPOINTS
        for method in (rule.methods or set()) - SKIPPED_METHODS
    }
