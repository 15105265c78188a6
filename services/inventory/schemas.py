from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.common.limits import MAX_BATCH_ITEMS
from services.common.schemas import CorrelationId, Id, Quantity

#: an admin can set at most this many units of one product at once
MAX_STOCK = 1_000_000


class SetStockSchema(Schema):
    product_id = Id(required=True)
    available = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=MAX_STOCK))


class ReservationItemSchema(Schema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


class ReserveSchema(Schema):
    order_id = Id(required=True)
    items = fields.List(
        fields.Nested(ReservationItemSchema), required=True, validate=validate.Length(min=1, max=100)
    )
    correlation_id = CorrelationId()


class ReserveManySchema(Schema):
    """The batch as a whole; each entry is checked on its own (ReserveSchema), so that a malformed
    order fails alone instead of failing the others with it."""

    reservations = fields.List(
        fields.Dict(), required=True, validate=validate.Length(min=1, max=MAX_BATCH_ITEMS)
    )


# --- events -----------------------------------------------------------------


class StockAdjustedEventSchema(Schema):
    product_id = Id(required=True)
    available = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=MAX_STOCK))
    reserved = fields.Integer(strict=True, required=True, validate=validate.Range(min=0))


class StockLineSchema(Schema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)


class StockMovementEventSchema(Schema):
    """stock_reserved / stock_released / stock_committed: the order's lines that moved."""

    order_id = Id(required=True)
    items = fields.List(fields.Nested(StockLineSchema), required=True, validate=validate.Length(min=1))


EVENT_SCHEMAS: dict[str, Schema] = {
    "stock_adjusted": StockAdjustedEventSchema(),
    "stock_reserved": StockMovementEventSchema(),
    "stock_released": StockMovementEventSchema(),
    "stock_committed": StockMovementEventSchema(),
}
