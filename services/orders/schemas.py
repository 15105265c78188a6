from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.schemas import Cents, Currency, Id, PageSchema, Quantity, text
from services.orders.domain.saga import STATUS_EVENTS, Status


class ItemSchema(Schema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


class CreateOrderSchema(Schema):
    customer_id = Id(required=True)
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1, max=100))
    #: the caller's name for this request: a retry with the same key gets the same order
    request_key = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))


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
    cancellation_requested = fields.Boolean()
    #: why the saga is parked waiting for an operator (None while it runs)
    stalled_reason = fields.String(allow_none=True)
    items = fields.List(fields.Nested(OrderItemSchema))
    history = fields.List(fields.Nested(StatusChangeSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class StalledOrderSchema(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    status = fields.String()
    attempts = fields.Integer()
    stalled_reason = fields.String()
    updated_at = fields.DateTime()


# --- events -----------------------------------------------------------------


class OrderCreatedItemSchema(Schema):
    product_id = Id(required=True)
    sku = fields.String(required=True)
    quantity = Quantity(required=True)
    unit_price_cents = Cents(required=True)


class OrderEventSchema(Schema):
    """What every order status event carries (see ``use_cases.order_event``)."""

    order_id = Id(required=True)
    customer_id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in Status]))
    total_cents = Cents(required=True)
    currency = Currency(required=True)
    reason = fields.String(required=True, allow_none=True)
    #: only once shipping has given the order one
    tracking_number = fields.String()

    def __init__(self, status: Status, **kwargs: Any):
        super().__init__(**kwargs)
        #: each event type announces exactly one status
        self.status = status

    @validates_schema
    def _announces_its_status(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["status"] != self.status.value:
            raise ValidationError(f"must be {self.status.value}", "status")


class OrderCreatedEventSchema(OrderEventSchema):
    """order_created also carries the priced lines; the order has no tracking number yet."""

    class Meta:
        exclude = ("tracking_number",)

    items = fields.List(fields.Nested(OrderCreatedItemSchema), required=True, validate=validate.Length(min=1))


class OrderCancellationRequestedEventSchema(Schema):
    order_id = Id(required=True)
    customer_id = Id(required=True)
    reason = text(500, required=True)


EVENT_SCHEMAS: dict[str, Schema] = {
    **{
        event_type: (OrderCreatedEventSchema if status is Status.PENDING else OrderEventSchema)(status)
        for status, event_type in STATUS_EVENTS.items()
    },
    "order_cancellation_requested": OrderCancellationRequestedEventSchema(),
}
