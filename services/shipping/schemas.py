from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.common.schemas import Id
from services.shipping.domain import EVENTS, FORWARD


class ShipmentSchema(Schema):
    shipment_id = Id(attribute="id", dump_only=True)
    order_id = Id(dump_only=True)
    customer_id = Id(dump_only=True)
    status = fields.String(dump_only=True)
    tracking_number = fields.String(dump_only=True)
    scheduled_at = fields.DateTime(dump_only=True)
    shipped_at = fields.DateTime(dump_only=True)
    delivered_at = fields.DateTime(dump_only=True)


class AdvanceSchema(Schema):
    """An admin may only push a shipment forward; cancelling has its own command."""

    status = fields.String(required=True, validate=validate.OneOf(FORWARD))


# --- events -----------------------------------------------------------------


class ShipmentEventSchema(Schema):
    """shipment_scheduled / _shipped / _delivered / _cancelled: the shipment that moved."""

    order_id = Id(required=True)
    customer_id = Id(required=True)
    shipment_id = Id(required=True)
    tracking_number = fields.String(required=True)


EVENT_SCHEMAS: dict[str, Schema] = {event_type: ShipmentEventSchema() for event_type in EVENTS.values()}
