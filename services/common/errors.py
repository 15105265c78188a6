"""Typed errors that cross the RPC boundary intact.

Each class is registered with nameko's ``deserialize_to_instance`` so the
caller gets the same type back (not a ``RemoteError``) and can map it, e.g.
to an HTTP status in the gateway. Arguments must be JSON-serialisable because
nameko rebuilds the instance from ``exc.args``.
"""

from __future__ import annotations

import json
from typing import Any

from nameko.exceptions import deserialize_to_instance


class ServiceError(Exception):
    """Base of every error a service raises on purpose."""

    code = "service_error"
    #: whether retrying the same call later may succeed
    transient = False

    def __init__(self, message: str, details: dict[str, Any] | str | None = None):
        # nameko stringifies every non-string inside exc.args on the way out, so
        # details travel as one JSON string and keep their types
        if not isinstance(details, str):
            details = json.dumps(details or {}, default=str)
        super().__init__(message, details)

    @property
    def message(self) -> str:
        return self.args[0]

    @property
    def details(self) -> dict[str, Any]:
        return json.loads(self.args[1])

    def __str__(self) -> str:
        return self.message


@deserialize_to_instance
class ValidationFailed(ServiceError):
    """The input is malformed; ``details`` maps field names to messages."""

    code = "validation_failed"


@deserialize_to_instance
class NotFound(ServiceError):
    code = "not_found"


@deserialize_to_instance
class Conflict(ServiceError):
    """The request is valid but clashes with the current state."""

    code = "conflict"


@deserialize_to_instance
class Forbidden(ServiceError):
    code = "forbidden"


@deserialize_to_instance
class Unauthorized(ServiceError):
    """Credentials are missing or wrong."""

    code = "unauthorized"


@deserialize_to_instance
class OutOfStock(Conflict):
    code = "out_of_stock"


@deserialize_to_instance
class PaymentDeclined(Conflict):
    code = "payment_declined"


@deserialize_to_instance
class ServiceUnavailable(ServiceError):
    """A dependency did not answer in time; the same call may succeed later."""

    code = "service_unavailable"
    transient = True


@deserialize_to_instance
class InternalError(ServiceError):
    """An unexpected failure. The message never carries internals."""

    code = "internal_error"


#: every typed error by its code: how a batch call's per-item errors come back as their types
ERRORS_BY_CODE: dict[str, type[ServiceError]] = {
    cls.code: cls
    for cls in (ValidationFailed, NotFound, Conflict, Forbidden, Unauthorized, OutOfStock, PaymentDeclined,
                ServiceUnavailable, InternalError)
}


def error_entry(exc: ServiceError) -> dict[str, Any]:
    """A typed error as one item of a batch call's answer (the call itself succeeds)."""
    return {"code": exc.code, "message": exc.message, "details": exc.details}


def error_from_entry(entry: dict[str, Any]) -> ServiceError:
    """The typed error an ``error_entry`` describes; an unknown code is an InternalError."""
    return ERRORS_BY_CODE.get(entry["code"], InternalError)(entry["message"], entry.get("details"))
