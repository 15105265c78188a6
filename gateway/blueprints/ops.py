"""Service endpoints: liveness, readiness, metrics, the OpenAPI document and Swagger UI."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from flask.typing import ResponseReturnValue
from swagger_ui_bundle import swagger_ui_path

from gateway import metrics
from gateway.openapi import build_spec, operation
from gateway.schemas import HealthResponse, ReadyResponse

bp = Blueprint("ops", __name__)

DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>E-commerce API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""


@bp.get("/health")
@operation("Liveness: the gateway process answers", "ops", rate_limited=False, calls_services=False,
           responses={200: (HealthResponse, "Alive")})
def health() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@bp.get("/ready")
@operation("Readiness: the broker is reachable and every service consumes its queue "
           "(analytics is reported, not required)", "ops",
           rate_limited=False, calls_services=False,
           responses={200: (ReadyResponse, "Ready"), 503: (ReadyResponse, "Not ready; see which part")})
def ready() -> ResponseReturnValue:
    client = current_app.extensions["gateway.rpc"]
    services = list(current_app.extensions["gateway.services"])
    optional = set(current_app.extensions["gateway.optional_services"])
    breakers = client.breakers.refresh()
    report: dict[str, Any] = {"status": "ready", "broker": "ok", "services": {}}
    try:
        consumers = client.transport.consumers(services)
    except Exception as exc:  # the broker itself is unreachable
        consumers = {}
        report["broker"] = f"unreachable: {type(exc).__name__}"
    for service in services:
        count = consumers.get(service, -1)
        report["services"][service] = {"consumers": max(count, 0), "breaker": breakers[service]}
        if count < 1 and service not in optional:
            report["status"] = "unavailable"
    if report["broker"] != "ok":
        report["status"] = "unavailable"
    response = jsonify(report)
    if report["status"] != "ready":
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response


@bp.get("/metrics")
@operation("Prometheus metrics (text exposition format)", "ops", rate_limited=False, calls_services=False,
           content_type="text/plain", responses={200: (None, "Metrics")})
def prometheus() -> ResponseReturnValue:
    current_app.extensions["gateway.rpc"].breakers.refresh()
    return metrics.render(current_app.extensions["gateway.metrics"])


@bp.get("/openapi.json")
@operation("This API's OpenAPI 3 document", "ops", rate_limited=False, calls_services=False,
           responses={200: (None, "The document")})
def openapi_document() -> ResponseReturnValue:
    document = current_app.extensions.get("gateway.openapi")
    if document is None:
        document = current_app.extensions["gateway.openapi"] = build_spec(current_app)
    return jsonify(document)


@bp.get("/docs")
@operation("Swagger UI", "ops", rate_limited=False, calls_services=False, content_type="text/html",
           responses={200: (None, "The page")})
def docs() -> ResponseReturnValue:
    return Response(DOCS_PAGE, mimetype="text/html")


@bp.get("/docs/<path:filename>")
@operation("Swagger UI's assets (served from the swagger-ui-bundle package)", "ops", rate_limited=False,
           calls_services=False, content_type="*/*",
           responses={200: (None, "The asset")})
def docs_asset(filename: str) -> ResponseReturnValue:
    return send_from_directory(str(swagger_ui_path), filename, max_age=3600)
