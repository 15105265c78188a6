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


# --- events -----------------------------------------------------------------


class CartItemAddedEventSchema(Schema):
    customer_id = Id(required=True)
    product_id = Id(required=True)
    #: how many were added ...
    quantity = Quantity(required=True)
    #: ... and how many the line holds now
    line_quantity = Quantity(required=True)


class CartItemUpdatedEventSchema(Schema):
    customer_id = Id(required=True)
    product_id = Id(required=True)
    #: the line's new quantity
    quantity = Quantity(required=True)


class CartItemRemovedEventSchema(Schema):
    customer_id = Id(required=True)
    product_id = Id(required=True)


class CartCheckedOutEventSchema(Schema):
    customer_id = Id(required=True)
    order_id = Id(required=True)


EVENT_SCHEMAS: dict[str, Schema] = {
    "cart_item_added": CartItemAddedEventSchema(),
    "cart_item_updated": CartItemUpdatedEventSchema(),
    "cart_item_removed": CartItemRemovedEventSchema(),
    "cart_checked_out": CartCheckedOutEventSchema(),
}
