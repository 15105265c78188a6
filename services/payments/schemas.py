from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.common.limits import MAX_BATCH_ITEMS
from services.common.schemas import Cents, CorrelationId, Currency, Id


class ChargeSchema(Schema):
    order_id = Id(required=True)
    customer_id = Id(required=True)
    amount_cents = Cents(required=True)
    currency = Currency(required=True)
    correlation_id = CorrelationId()


class ChargeManySchema(Schema):
    """The batch as a whole; each entry is checked on its own (ChargeSchema), so that a malformed
    charge fails alone instead of failing the others with it."""

    charges = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=MAX_BATCH_ITEMS))


class PaymentSchema(Schema):
    """What every payments RPC returns for a payment."""

    payment_id = fields.Integer(attribute="id", dump_only=True)
    order_id = fields.Integer(dump_only=True)
    customer_id = fields.Integer(dump_only=True)
    amount_cents = fields.Integer(dump_only=True)
    currency = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    decline_reason = fields.String(dump_only=True, allow_none=True)


# --- events -----------------------------------------------------------------


class PaymentEventSchema(Schema):
    """payment_captured / payment_refunded: the payment; ``reason`` is its decline reason, None."""

    order_id = Id(required=True)
    customer_id = Id(required=True)
    payment_id = Id(required=True)
    amount_cents = Cents(required=True)
    currency = Currency(required=True)
    reason = fields.String(required=True, allow_none=True)


class PaymentDeclinedEventSchema(PaymentEventSchema):
    """A decline always says why."""

    reason = fields.String(required=True)


EVENT_SCHEMAS: dict[str, Schema] = {
    "payment_captured": PaymentEventSchema(),
    "payment_declined": PaymentDeclinedEventSchema(),
    "payment_refunded": PaymentEventSchema(),
}
