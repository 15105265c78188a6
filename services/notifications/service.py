"""Notifications: tells customers what happened to their account and orders.

Delivery is simulated: a message is stored (so customers can list it) and logged.

Events are consumed in batches (``services.common.batch_events``): one worker and one transaction
for every event that arrived within 50 ms, instead of a worker, a transaction and an ack each. Each
event keeps its own queue, its own inbox claim and its own log lines, under the handler name it had
when it had a handler of its own (``on_<event type>``).
"""

from __future__ import annotations

import logging
from typing import Any

from marshmallow import Schema
from sqlalchemy import insert, select

from services.common.batch_events import BatchOutcome, batch_event_handler, handler_name
from services.common.errors import ValidationFailed
from services.common.rpc import rpc
from services.common.schemas import load
from services.common.store import Store, paginate, utcnow
from services.common.telemetry import Telemetry, event_log_context
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
notifications = Notification.__table__
#: built once (its cache key memoized); Core, not the ORM: an ORM flush per message was half the
#: service's profile
INSERT_NOTIFICATIONS = insert(notifications).returning(notifications.c.id, sort_by_parameter_order=True)


#: the events that notify someone: event type -> (the service that emits it, the schema its payload
#: must match)
NOTIFYING: dict[str, tuple[str, Schema]] = {
    "customer_registered": ("customers", EventPayloadSchema()),
    **{event_type: ("orders", OrderEventPayloadSchema())
       for event_type in ("order_created", "order_confirmed", "order_rejected", "order_cancelled",
                          "order_shipped", "order_delivered")},
    "payment_declined": ("payments", OrderEventPayloadSchema()),
}


class NotificationsService:
    name = "notifications"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry()

    @batch_event_handler([(source, event_type, handler_name(event_type))
                          for event_type, (source, _) in NOTIFYING.items()])
    def notify(self, events: list[dict[str, Any]]) -> BatchOutcome:
        """Record each event's messages once per event id, then "send" them.

        A payload that breaks its schema is parked at once (it can never succeed) and writes
        nothing; the others commit together.
        """
        composed: list[tuple[dict[str, Any], dict[str, Any], list[domain.Message]]] = []
        rejected: list[int] = []
        for index, event in enumerate(events):
            with event_log_context(event, handler_name(event["type"])):
                try:
                    payload = load(NOTIFYING[event["type"]][1], event["payload"])
                except ValidationFailed as exc:
                    log.error("dead-lettering invalid event: %s", exc.details,
                              extra={"error": type(exc).__name__})
                    rejected.append(index)
                    continue
            composed.append((event, payload, domain.compose(event["type"], payload)))
        with self.store.transaction() as tx:
            sent = [(event, payload, messages) for event, payload, messages in composed
                    if tx.first_delivery(event, handler=handler_name(event["type"]))]
            now = utcnow()
            rows = [
                {"customer_id": payload["customer_id"], "channel": message.channel,
                 "subject": message.subject, "body": message.body, "event_type": event["type"],
                 "event_id": event["event_id"], "created_at": now}
                for event, payload, messages in sent
                for message in messages
            ]
            # one INSERT for the batch's messages, their ids back in order
            ids = iter(tx.session.scalars(INSERT_NOTIFICATIONS, rows).all() if rows else ())
            # one event per notifying event, naming every message it sent: a fact per message was
            # five publishes per order for the analytics sink alone (docs/performance.md, round 6)
            for event, payload, messages in sent:
                if not messages:
                    continue
                tx.emit(
                    "notification_sent",
                    {
                        "notification_ids": [next(ids) for _ in messages],
                        "customer_id": payload["customer_id"],
                        "channels": [message.channel for message in messages],
                        "event_type": event["type"],
                        **({"order_id": payload["order_id"]} if "order_id" in payload else {}),
                    },
                    aggregate_id=payload["customer_id"],
                    correlation_id=event.get("correlation_id"),
                )
        # one line per event, however many channels it went out on
        for event, payload, messages in sent:
            if messages:
                with event_log_context(event, handler_name(event["type"])):
                    log.info("notified customer_id=%s by %s: %r", payload["customer_id"],
                             ", ".join(message.channel for message in messages), messages[0].subject)
        return BatchOutcome(reject=rejected)

    @rpc
    def list_notifications(self, customer_id: int, page: int = 1, per_page: int = 20) -> dict:
        """A customer's notifications, newest first."""
        params = load(NotificationQuerySchema(),
                      {"customer_id": customer_id, "page": page, "per_page": per_page})
        statement = select(Notification).where(Notification.customer_id == params["customer_id"])
        with self.store.get_session(close_on_exit=True) as session:
            return paginate(session, statement, [Notification.created_at.desc(), Notification.id.desc()],
                            params, notification_schema)
