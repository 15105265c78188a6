"""Prometheus metrics through prometheus-flask-exporter.

Request counts and latencies per endpoint come from the exporter; the circuit
breaker gauge (``gateway.breakers``) is registered in the exporter's registry.
Under gunicorn with several workers, ``PROMETHEUS_MULTIPROC_DIR`` (set by
gateway/gunicorn_conf.py) makes /metrics aggregate every worker.
"""

from __future__ import annotations

import os

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_flask_exporter import PrometheusMetrics


def init_metrics(app: Flask) -> PrometheusMetrics:
    # a registry per app: unit tests build many apps in one process
    registry = CollectorRegistry(auto_describe=True)
    metrics = PrometheusMetrics(app, path=None, registry=registry, group_by="endpoint",
                                defaults_prefix="gateway")
    metrics.info("gateway_info", "Gateway build information", version="1.0.0")
    return metrics


def render(metrics: PrometheusMetrics) -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = metrics.registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})
