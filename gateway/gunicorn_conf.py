"""gunicorn settings for the gateway: ``gunicorn -c gateway/gunicorn_conf.py``.

Worker model: gthread (threads in a few processes, no monkey patching); see
docs/gateway.md for why. Each worker process owns one RPC pool with one proxy
per thread, so a request never waits for a proxy.

Environment: GATEWAY_HOST (0.0.0.0), GATEWAY_PORT (8080), GATEWAY_WORKERS (2),
GATEWAY_THREADS (16), GATEWAY_TIMEOUT (30 s per request); for the logs (services.common.logs)
LOG_LEVEL (INFO), LOGSTASH_HOST and LOGSTASH_PORT (unset: console only).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from services.common.logs import setup_logging
from services.common.warnings_filter import silence_eventlet_banner

# the app imports nameko and so eventlet, which announces its deprecation; the gateway does not run on it
silence_eventlet_banner()

bind = f"{os.environ.get('GATEWAY_HOST', '0.0.0.0')}:{os.environ.get('GATEWAY_PORT', '8080')}"
wsgi_app = "gateway:create_app()"
worker_class = "gthread"
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("GATEWAY_THREADS", "16"))
timeout = int(os.environ.get("GATEWAY_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
# no gunicorn access log: the app logs one line per request with its context (gateway/access_log.py)
errorlog = "-"
# supervisord manages the process; no gunicornc socket (its default path would be shared by every stack)
control_socket_disable = True

# one RPC proxy per request thread
os.environ.setdefault("RPC_POOL_SIZE", str(threads))

# several workers: /metrics aggregates all of them through prometheus_client's multiprocess mode
_metrics_dir: str | None = None
if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def post_fork(server: Any, worker: Any) -> None:
    # in the worker, not the master: each worker opens its own connection to the log shipper; a
    # writer thread of its own writes the lines, so request threads do not wait on the handlers' locks
    setup_logging("gateway", background=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
