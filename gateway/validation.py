"""Reading a request's JSON body and query string through a schema."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from gateway.errors import ApiError, validation_error


def _messages(exc: ValidationError) -> dict[str, Any]:
    return exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}


def json_body(schema: Schema, *, optional: bool = False) -> dict[str, Any]:
    """The validated body; 415 unless JSON, 400 if unparsable, 422 listing the invalid fields."""
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if optional and not raw.strip():
        data: Any = {}
    else:
        if not request.is_json:
            raise ApiError("unsupported-media-type", "Send the request body as application/json.")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError("malformed-request", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise validation_error({"_schema": ["the body must be a JSON object"]})
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise validation_error(_messages(exc)) from None


def query_args(schema: Schema) -> dict[str, Any]:
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as exc:
        raise validation_error(_messages(exc), "The query string has invalid parameters.") from None
