"""X-Request-ID: accepted from the client (if sane) or generated, echoed on the response.

The id is the correlation id of everything the request causes: the RPC layer
puts it into nameko's context data (``correlation_id``), the services log it
and stamp it on every event, and gateway/access_log.py binds it to the
gateway's own log lines.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

HEADER = "X-Request-ID"
VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}$")


def _assign() -> None:
    sent = request.headers.get(HEADER, "")
    g.request_id = sent if VALID.match(sent) else uuid.uuid4().hex


def _echo(response: Response) -> Response:
    response.headers[HEADER] = getattr(g, "request_id", "") or uuid.uuid4().hex
    return response


def init_correlation(app: Flask) -> None:
    app.before_request(_assign)
    app.after_request(_echo)
