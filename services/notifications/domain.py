"""What each event tells the customer: pure functions from (event type, payload) to messages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

EMAIL = "email"
SMS = "sms"
CHANNELS = (EMAIL, SMS)


@dataclass(frozen=True)
class Message:
    channel: str
    subject: str
    body: str


def _reason(payload: Mapping[str, Any]) -> str:
    return str(payload.get("reason") or "no reason was given")


def _welcome(payload: Mapping[str, Any]) -> list[Message]:
    name = payload.get("name") or "there"
    return [Message(EMAIL, "Welcome to the shop",
                    f"Hi {name}, thanks for registering. Your account is ready to use.")]


def _order_created(payload: Mapping[str, Any]) -> list[Message]:
    order = payload["order_id"]
    return [Message(EMAIL, f"We received your order #{order}",
                    f"Your order #{order} was received; we are reserving the items and taking payment.")]


def _order_confirmed(payload: Mapping[str, Any]) -> list[Message]:
    order = payload["order_id"]
    return [Message(EMAIL, f"Order #{order} confirmed",
                    f"Good news: your order #{order} is confirmed and will be shipped soon.")]


def _order_rejected(payload: Mapping[str, Any]) -> list[Message]:
    order = payload["order_id"]
    return [Message(EMAIL, f"Order #{order} could not be placed",
                    f"Sorry, we could not place your order #{order}: {_reason(payload)}. "
                    "You have not been charged.")]


def _order_cancelled(payload: Mapping[str, Any]) -> list[Message]:
    order = payload["order_id"]
    return [Message(EMAIL, f"Order #{order} cancelled",
                    f"Your order #{order} was cancelled: {_reason(payload)}. "
                    "Any payment taken will be refunded.")]


def _order_shipped(payload: Mapping[str, Any]) -> list[Message]:
    order = payload["order_id"]
    tracking = payload.get("tracking_number") or "not available yet"
    subject = f"Order #{order} shipped"
    return [
        Message(EMAIL, subject, f"Your order #{order} is on its way. Tracking number: {tracking}."),
        Message(SMS, subject, f"Order #{order} shipped, tracking {tracking}."),
    ]


def _order_delivered(payload: Mapping[str, Any]) -> list[Message]:
    order = payload["order_id"]
    return [Message(EMAIL, f"Order #{order} delivered",
                    f"Your order #{order} was delivered. Enjoy!")]


def _payment_declined(payload: Mapping[str, Any]) -> list[Message]:
    order = payload["order_id"]
    return [Message(EMAIL, f"Payment declined for order #{order}",
                    f"The payment for your order #{order} was declined: {_reason(payload)}.")]


#: event type -> the messages it sends
TEMPLATES: dict[str, Callable[[Mapping[str, Any]], list[Message]]] = {
    "customer_registered": _welcome,
    "order_created": _order_created,
    "order_confirmed": _order_confirmed,
    "order_rejected": _order_rejected,
    "order_cancelled": _order_cancelled,
    "order_shipped": _order_shipped,
    "order_delivered": _order_delivered,
    "payment_declined": _payment_declined,
}


def compose(event_type: str, payload: Mapping[str, Any]) -> list[Message]:
    """The messages ``event_type`` sends, built from its (already validated) payload."""
    return TEMPLATES[event_type](payload)
