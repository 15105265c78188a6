from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields

from services.common.schemas import Id, Quantity


class UtcDateTime(fields.DateTime):
    """Always an aware UTC timestamp: SQLite hands stored datetimes back naive."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class CartItemSchema(Schema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


class CartSchema(Schema):
    customer_id = Id(dump_only=True)
    items = fields.List(fields.Nested(CartItemSchema), dump_only=True)
    updated_at = UtcDateTime(dump_only=True, allow_none=True)
