from __future__ import annotations

from marshmallow import Schema, fields

from services.common.schemas import Id, Quantity


class CartItemSchema(Schema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


class CartSchema(Schema):
    customer_id = Id(dump_only=True)
    items = fields.List(fields.Nested(CartItemSchema), dump_only=True)
    updated_at = fields.DateTime(dump_only=True, allow_none=True)
