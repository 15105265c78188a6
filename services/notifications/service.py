"""Notifications: tells customers what happened to their account and orders.

Delivery is simulated: a message is stored (so customers can list it) and logged.
"""

from __future__ import annotations

import logging
from typing import Any

from marshmallow import Schema
from sqlalchemy import select

from services.common.messaging import event_handler
from services.common.rpc import rpc
from services.common.schemas import load
from services.common.store import Store, paginate
from services.common.telemetry import Telemetry
from services.notifications import domain
from services.notifications.models import Base, Notification
from services.notifications.schemas import (
    EVENT_SCHEMAS,
    EventPayloadSchema,
    NotificationQuerySchema,
    NotificationSchema,
    OrderEventPayloadSchema,
)

log = logging.getLogger(__name__)

notification_schema = NotificationSchema()


class NotificationsService:
    name = "notifications"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry()

    @event_handler("customers", "customer_registered")
    def on_customer_registered(self, event: dict) -> None:
        self._notify(event, "customer_registered", EventPayloadSchema())

    @event_handler("orders", "order_created")
    def on_order_created(self, event: dict) -> None:
        self._notify(event, "order_created", OrderEventPayloadSchema())

    @event_handler("orders", "order_confirmed")
    def on_order_confirmed(self, event: dict) -> None:
        self._notify(event, "order_confirmed", OrderEventPayloadSchema())

    @event_handler("orders", "order_rejected")
    def on_order_rejected(self, event: dict) -> None:
        self._notify(event, "order_rejected", OrderEventPayloadSchema())

    @event_handler("orders", "order_cancelled")
    def on_order_cancelled(self, event: dict) -> None:
        self._notify(event, "order_cancelled", OrderEventPayloadSchema())

    @event_handler("orders", "order_shipped")
    def on_order_shipped(self, event: dict) -> None:
        self._notify(event, "order_shipped", OrderEventPayloadSchema())

    @event_handler("orders", "order_delivered")
    def on_order_delivered(self, event: dict) -> None:
        self._notify(event, "order_delivered", OrderEventPayloadSchema())

    @event_handler("payments", "payment_declined")
    def on_payment_declined(self, event: dict) -> None:
        self._notify(event, "payment_declined", OrderEventPayloadSchema())

    @rpc
    def list_notifications(self, customer_id: int, page: int = 1, per_page: int = 20) -> dict:
        """A customer's notifications, newest first."""
        params = load(NotificationQuerySchema(),
                      {"customer_id": customer_id, "page": page, "per_page": per_page})
        statement = select(Notification).where(Notification.customer_id == params["customer_id"])
        with self.store.get_session(close_on_exit=True) as session:
            return paginate(session, statement, [Notification.created_at.desc(), Notification.id.desc()],
                            params, notification_schema)

    def _notify(self, event: dict[str, Any], event_type: str, schema: Schema) -> None:
        """Record the event's messages once per event id, then "send" them.

        An invalid payload raises ValidationFailed before anything is written,
        so the message is dead-lettered instead of retried.
        """
        payload = load(schema, event["payload"])
        messages = domain.compose(event_type, payload)
        with self.store.transaction() as tx:
            if not tx.first_delivery(event):
                return
            for message in messages:
                notification = Notification(
                    customer_id=payload["customer_id"],
                    channel=message.channel,
                    subject=message.subject,
                    body=message.body,
                    event_type=event_type,
                    event_id=event["event_id"],
                )
                tx.session.add(notification)
                tx.session.flush()
                tx.emit(
                    "notification_sent",
                    {
                        "notification_id": notification.id,
                        "customer_id": notification.customer_id,
                        "channel": notification.channel,
                        "event_type": notification.event_type,
                        **({"order_id": payload["order_id"]} if "order_id" in payload else {}),
                    },
                    aggregate_id=notification.customer_id,
                )
        for message in messages:
            log.info("notification sent customer_id=%s channel=%s subject=%r",
                     payload["customer_id"], message.channel, message.subject)
