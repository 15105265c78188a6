"""Health of a Flink container: the jobmanager's REST API answers; a taskmanager is registered with it.

Standard library only. The role is PID 1's first argument after entrypoint.sh (jobmanager by default).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request
from pathlib import Path

TIMEOUT = 4.0


def role() -> str:
    try:
        args = [a.decode() for a in Path("/proc/1/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return "jobmanager"
    joined = " ".join(args)
    for name in ("taskmanager", "jobmanager", "submit"):
        if name in joined:
            return name
    return "jobmanager"


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return json.load(response)


def main() -> int:
    port = os.environ.get("ANALYTICS_FLINK_REST_PORT", "8081")
    try:
        current = role()
        if current == "jobmanager":
            get(f"http://127.0.0.1:{port}/overview")
        elif current == "taskmanager":
            host = os.environ.get("FLINK_JOBMANAGER_HOST", "flink-jobmanager")
            registered = get(f"http://{host}:{port}/taskmanagers")["taskmanagers"]
            mine = socket.gethostbyname(socket.gethostname())
            if not any(mine in tm.get("path", "") or mine in tm.get("id", "") for tm in registered):
                print(f"unhealthy: no taskmanager at {mine} registered with {host}", file=sys.stderr)
                return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
