from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from services.common.schemas import Id, PageSchema
from services.notifications.domain import CHANNELS


class EventPayloadSchema(Schema):
    """What every notifying event must carry; a payload without it can never be delivered."""

    customer_id = Id(required=True)
    name = fields.String(allow_none=True)

    class Meta:
        # producers add fields over time; only what the templates use is checked
        unknown = INCLUDE


class OrderEventPayloadSchema(EventPayloadSchema):
    order_id = Id(required=True)
    reason = fields.String(allow_none=True)
    tracking_number = fields.String(allow_none=True)


class NotificationSchema(Schema):
    id = Id(dump_only=True)
    customer_id = Id(dump_only=True)
    channel = fields.String(dump_only=True)
    subject = fields.String(dump_only=True)
    body = fields.String(dump_only=True)
    event_type = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class NotificationQuerySchema(PageSchema):
    customer_id = Id(required=True)


# --- events -----------------------------------------------------------------


class NotificationSentEventSchema(Schema):
    """One per event that notified someone, however many channels it went out on."""

    #: the stored messages, one per channel, in the order of ``channels``
    notification_ids = fields.List(Id(), required=True, validate=validate.Length(min=1))
    customer_id = Id(required=True)
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), required=True,
                           validate=validate.Length(min=1))
    #: the event the notification tells about
    event_type = fields.String(required=True)
    #: only when that event concerns an order
    order_id = Id()


EVENT_SCHEMAS: dict[str, Schema] = {"notification_sent": NotificationSentEventSchema()}
