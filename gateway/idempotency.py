"""``Idempotency-Key`` for the requests that create orders.

A record per (user, key) holds a hash of the request (method, path and the
canonical JSON body) and, once the first request finished, its status, body
and Location. The first request claims the key with ``SET NX`` (an
in-progress marker that expires if the gateway dies mid-request); a
concurrent duplicate waits for the first to finish and then gets its answer.

  * same key, same request: the stored answer, replayed (``Idempotent-Replayed: true``)
  * same key, another request: 422 ``idempotency-key-reused``
  * 5xx answers are not stored: the key is released so a retry runs again; the
    retry cannot make a second order, because create_order gets the key too
    (``request_key``) and orders returns the order a lost answer was about

Records live in Redis when ``REDIS_URL`` is set (shared by replicas, kept
across restarts) and in process memory otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, Protocol, TypeVar

from flask import Response, current_app, request

from gateway.auth import current_user
from gateway.errors import ApiError, problem_response, retry_after

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
#: how long a duplicate waits for the first request to finish
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05


class Store(Protocol):
    def claim(self, key: str, record: dict[str, Any], ttl: int) -> bool: ...

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, record: dict[str, Any], ttl: int) -> None: ...

    def release(self, key: str) -> None: ...


class RedisStore:
    def __init__(self, redis: Any, namespace: str):
        self.redis = redis
        self.namespace = namespace

    def _key(self, key: str) -> str:
        return f"{self.namespace}:idempotency:{key}"

    def claim(self, key: str, record: dict[str, Any], ttl: int) -> bool:
        return bool(self.redis.set(self._key(key), json.dumps(record), nx=True, ex=ttl))

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self.redis.get(self._key(key))
        return None if raw is None else json.loads(raw)

    def put(self, key: str, record: dict[str, Any], ttl: int) -> None:
        self.redis.set(self._key(key), json.dumps(record), ex=ttl)

    def release(self, key: str) -> None:
        self.redis.delete(self._key(key))


class MemoryStore:
    """One process only: for development and unit tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, tuple[float, dict[str, Any]]] = {}

    def _live(self, key: str) -> dict[str, Any] | None:
        entry = self._records.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._records.pop(key, None)
            return None
        return entry[1]

    def claim(self, key: str, record: dict[str, Any], ttl: int) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._records[key] = (time.monotonic() + ttl, record)
            return True

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._live(key)

    def put(self, key: str, record: dict[str, Any], ttl: int) -> None:
        with self._lock:
            self._records[key] = (time.monotonic() + ttl, record)

    def release(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)


def fingerprint() -> str:
    """The request as the key is bound to it: method, path and canonical JSON body."""
    body = request.get_json(silent=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def _replay(record: dict[str, Any]) -> Response:
    response = Response(record["body"], status=record["status"], mimetype=record["mimetype"])
    for name, value in record.get("headers", {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def request_key() -> str | None:
    """This request's Idempotency-Key as orders' ``request_key`` (None without the header).

    Hashed, so any valid key fits the column and the client's text stays out of the database.
    Passed down, it closes what the Redis record alone leaves open: an order made by a call whose
    answer never came (a timeout, a gateway that died mid-request) is found again on the retry.
    """
    key = request.headers.get(HEADER)
    return None if key is None else f"idempotency-key:{key_digest(key)}"


def key_digest(key: str) -> str:
    """What is kept of a client's key: its SHA-256, so any valid key has one length."""
    return hashlib.sha256(key.encode()).hexdigest()


def idempotent(view: F) -> F:
    """Honour an Idempotency-Key header on ``view`` (which must need a logged-in user)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not KEY_PATTERN.match(key):
            raise ApiError("validation", f"{HEADER} must be 1 to 255 visible ASCII characters.",
                           fields={HEADER: ["must be 1 to 255 visible ASCII characters"]})
        settings = current_app.extensions["gateway.settings"]
        store: Store = current_app.extensions["gateway.idempotency"]
        user = current_user()
        record_key = f"{user.id}:{key_digest(key)}"
        mine = fingerprint()

        deadline = time.monotonic() + WAIT_SECONDS
        while not store.claim(record_key, {"fingerprint": mine, "state": "in_progress"},
                              settings.idempotency_lock_seconds):
            record = store.get(record_key)
            if record is None:
                continue  # the first request failed (5xx) and let go of the key: try it again
            if record["fingerprint"] != mine:
                raise ApiError("idempotency-key-reused",
                               f"This {HEADER} was already used for a different request.")
            if record["state"] == "done":
                return _replay(record)
            if time.monotonic() >= deadline:
                raise ApiError("idempotency-in-progress", "The first request with this key is still running.",
                               headers=retry_after(1))
            time.sleep(POLL_SECONDS)
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except ApiError as exc:
            if exc.problem.status >= 500:
                store.release(record_key)
                raise
            response = problem_response(exc)
        except BaseException:
            store.release(record_key)
            raise
        if response.status_code >= 500:
            store.release(record_key)
            return response
        headers = {name: response.headers[name] for name in ("Location",) if name in response.headers}
        store.put(record_key, {
            "fingerprint": mine, "state": "done", "status": response.status_code,
            "body": response.get_data(as_text=True), "mimetype": response.mimetype, "headers": headers,
        }, settings.idempotency_ttl_seconds)
        return response

    return wrapper  # type: ignore[return-value]
