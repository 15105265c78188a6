"""Wait until every service consumes its RPC queue (or fail, naming the laggards)."""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import quote, urlparse

import requests

from services.common.config import SERVICES, load_config

TIMEOUT = float(os.environ.get("READY_TIMEOUT", "90"))


def missing_consumers() -> list[str]:
    amqp = urlparse(load_config()["AMQP_URI"])
    vhost = quote(amqp.path.lstrip("/") or "/", safe="")
    missing = []
    for service in SERVICES:
        response = requests.get(f"http://localhost:15672/api/queues/{vhost}/rpc-{service}",
                                auth=(amqp.username or "guest", amqp.password or "guest"), timeout=5)
        if response.status_code != 200 or response.json().get("consumers", 0) < 1:
            missing.append(service)
    return missing


def main() -> int:
    deadline = time.monotonic() + TIMEOUT
    while (missing := missing_consumers()) and time.monotonic() < deadline:
        time.sleep(0.5)
    if missing:
        print(f"[platform] not ready after {TIMEOUT:.0f}s: {', '.join(missing)}; see var/log/<service>.log",
              file=sys.stderr)
        return 1
    print("[platform] all services ready", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
