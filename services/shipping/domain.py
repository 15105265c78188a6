"""Shipment rules: the status machine, the timer's schedule and tracking numbers.

Pure functions (apart from the random tracking number) so they are tested
without a database or a broker.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.common.errors import Conflict

SCHEDULED = "SCHEDULED"
SHIPPED = "SHIPPED"
DELIVERED = "DELIVERED"
CANCELLED = "CANCELLED"
#: the forward path; CANCELLED is a dead end reachable only from SCHEDULED
FORWARD = (SCHEDULED, SHIPPED, DELIVERED)
STATUSES = (*FORWARD, CANCELLED)

#: the event each status is announced with
EVENTS = {
    SCHEDULED: "shipment_scheduled",
    SHIPPED: "shipment_shipped",
    DELIVERED: "shipment_delivered",
    CANCELLED: "shipment_cancelled",
}
#: the column stamped when a shipment reaches a status
TIMESTAMPS = {
    SCHEDULED: "scheduled_at",
    SHIPPED: "shipped_at",
    DELIVERED: "delivered_at",
    CANCELLED: "cancelled_at",
}


@dataclass(frozen=True)
class Delays:
    """How long a shipment stays in a status before the timer moves it on."""

    ship_after: timedelta
    deliver_after: timedelta

    @classmethod
    def from_seconds(cls, ship_after: float, deliver_after: float) -> Delays:
        return cls(timedelta(seconds=ship_after), timedelta(seconds=deliver_after))


def new_tracking_number() -> str:
    """Unguessable, so a tracking number cannot be used to find someone else's parcel."""
    return "TRK" + secrets.token_hex(6).upper()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive; every stored timestamp is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def should_cancel(status: str) -> bool:
    """Whether cancelling changes anything; shipped parcels cannot be recalled."""
    if status in (SHIPPED, DELIVERED):
        raise Conflict("already shipped", {"status": status})
    return status == SCHEDULED


def advance_path(current: str, target: str) -> list[str]:
    """The statuses to pass through, in order, to get from ``current`` to ``target``.

    Empty when already there; each step is announced, so skipping SHIPPED on
    the way to DELIVERED still tells consumers the parcel was shipped.
    """
    if current == CANCELLED:
        raise Conflict("shipment is cancelled", {"status": current})
    start, end = FORWARD.index(current), FORWARD.index(target)
    if end < start:
        raise Conflict(f"cannot go back from {current} to {target}", {"status": current})
    return list(FORWARD[start + 1 : end + 1])


def due_status(
    status: str,
    scheduled_at: datetime,
    shipped_at: datetime | None,
    now: datetime,
    delays: Delays,
) -> str | None:
    """The status the timer moves a shipment to at ``now``, or None if none is due yet."""
    if status == SCHEDULED and as_utc(scheduled_at) + delays.ship_after <= now:
        return SHIPPED
    if status == SHIPPED and shipped_at is not None and as_utc(shipped_at) + delays.deliver_after <= now:
        return DELIVERED
    return None
