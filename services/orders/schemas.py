from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.common.schemas import Id, PageSchema, Quantity, text
from services.orders.saga import Status


class ItemSchema(Schema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


class CreateOrderSchema(Schema):
    customer_id = Id(required=True)
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1, max=100))


class OrderQuerySchema(PageSchema):
    customer_id = Id(load_default=None, allow_none=True)
    status = fields.String(validate=validate.OneOf([s.value for s in Status]), load_default=None,
                           allow_none=True)


class CancelSchema(Schema):
    reason = text(500, load_default="cancelled by customer")


class OrderItemSchema(Schema):
    product_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    quantity = fields.Integer()
    unit_price_cents = fields.Integer()
    line_total_cents = fields.Integer()


class StatusChangeSchema(Schema):
    status = fields.String()
    reason = fields.String(allow_none=True)
    at = fields.DateTime()


class OrderSchema(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    status = fields.String()
    reason = fields.String(allow_none=True)
    currency = fields.String()
    total_cents = fields.Integer()
    tracking_number = fields.String(allow_none=True)
    cancellation_requested = fields.Method("_cancellation_requested")
    items = fields.List(fields.Nested(OrderItemSchema))
    history = fields.List(fields.Nested(StatusChangeSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _cancellation_requested(self, order: object) -> bool:
        return bool(getattr(order, "compensating", False)) and getattr(order, "compensation_target", None) \
            == Status.CANCELLED.value
