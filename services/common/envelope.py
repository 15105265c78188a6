"""The envelope every domain event travels in.

``event_id`` is what consumers deduplicate on; ``aggregate_id`` keys the event
(the order id for order events) so one aggregate's events stay in order
downstream.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import INCLUDE, Schema, fields, validate


class EnvelopeSchema(Schema):
    event_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    source = fields.String(required=True, validate=validate.Length(min=1, max=50))
    occurred_at = fields.String(required=True)
    correlation_id = fields.String(required=True, allow_none=True)
    aggregate_id = fields.String(required=True, allow_none=True)
    payload = fields.Dict(required=True)

    class Meta:
        # newer producers may add envelope fields; old consumers ignore them
        unknown = INCLUDE


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def make_envelope(
    source: str,
    event_type: str,
    payload: dict[str, Any],
    *,
    correlation_id: str | None,
    aggregate_id: Any = None,
    version: int = 1,
) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "type": event_type,
        "version": version,
        "source": source,
        "occurred_at": now_iso(),
        "correlation_id": correlation_id,
        "aggregate_id": None if aggregate_id is None else str(aggregate_id),
        "payload": payload,
    }
