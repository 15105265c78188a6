"""Marshmallow helpers shared by every service's ``schemas.py``."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from services.common.errors import ValidationFailed
from services.common.limits import MAX_CENTS, MAX_ID, MAX_QUANTITY


def Id(**kw: Any) -> fields.Integer:
    """A positive database id."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kw)


def Currency(**kw: Any) -> fields.String:
    """An ISO 4217 code in upper case."""
    return fields.String(
        validate=validate.Regexp(r"^[A-Z]{3}$", error="must be a 3-letter ISO 4217 code"), **kw
    )


def Cents(**kw: Any) -> fields.Integer:
    """Money: integer cents, never a float."""
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_CENTS), **kw)


def Quantity(**kw: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY), **kw)


def text(max_length: int, min_length: int = 1, **kw: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=min_length, max=max_length), **kw)


def CorrelationId(**kw: Any) -> fields.String:
    """The correlation id a batch RPC's entry carries for its order (the call's own is one order's)."""
    return fields.String(allow_none=True, validate=validate.Length(max=128), load_default=None, **kw)


def load(schema: Schema, data: Any, **kwargs: Any) -> Any:
    """Validate ``data`` or raise :class:`ValidationFailed` listing the fields."""
    try:
        return schema.load(data, **kwargs)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise ValidationFailed("invalid input", {"fields": messages}) from None


def require_id(value: Any, name: str = "id") -> int:
    """Validate a positional id argument of an RPC method."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValidationFailed("invalid input", {"fields": {name: ["must be a positive integer"]}})
    return value


class PageSchema(Schema):
    """Page parameters every listing accepts; query schemas extend it."""

    page = fields.Integer(strict=True, validate=validate.Range(min=1, max=100_000), load_default=1)
    per_page = fields.Integer(strict=True, validate=validate.Range(min=1, max=100), load_default=20)
