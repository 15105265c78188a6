import re
from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import Conflict
from services.shipping.domain import (
    CANCELLED,
    DELIVERED,
    SCHEDULED,
    SHIPPED,
    Delays,
    advance_path,
    as_utc,
    due_status,
    new_tracking_number,
    should_cancel,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
DELAYS = Delays.from_seconds(ship_after=5, deliver_after=10)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_tracking_numbers_are_trk_plus_12_uppercase_hex_and_unique():
    numbers = {new_tracking_number() for _ in range(1000)}
    assert len(numbers) == 1000
    assert all(re.fullmatch(r"TRK[0-9A-F]{12}", n) for n in numbers)


@pytest.mark.parametrize(
    ("status", "scheduled_at", "shipped_at", "expected"),
    [
        (SCHEDULED, ago(4.9), None, None),
        (SCHEDULED, ago(5), None, SHIPPED),
        (SCHEDULED, ago(60), None, SHIPPED),  # never skips SHIPPED, however late
        (SHIPPED, ago(60), ago(9.9), None),
        (SHIPPED, ago(60), ago(10), DELIVERED),
        (DELIVERED, ago(600), ago(600), None),
        (CANCELLED, ago(600), None, None),
    ],
)
def test_due_status(status, scheduled_at, shipped_at, expected):
    assert due_status(status, scheduled_at, shipped_at, NOW, DELAYS) == expected


def test_due_status_reads_naive_timestamps_as_utc():
    naive = ago(6).replace(tzinfo=None)
    assert due_status(SCHEDULED, naive, None, NOW, DELAYS) == SHIPPED
    assert as_utc(naive) == ago(6)


def test_due_status_follows_the_given_delays():
    fast = Delays.from_seconds(ship_after=0, deliver_after=0.5)
    assert due_status(SCHEDULED, NOW, None, NOW, fast) == SHIPPED
    assert due_status(SHIPPED, ago(1), ago(0.4), NOW, fast) is None
    assert due_status(SHIPPED, ago(1), ago(0.5), NOW, fast) == DELIVERED


@pytest.mark.parametrize(
    ("current", "target", "path"),
    [
        (SCHEDULED, SCHEDULED, []),
        (SCHEDULED, SHIPPED, [SHIPPED]),
        (SCHEDULED, DELIVERED, [SHIPPED, DELIVERED]),
        (SHIPPED, SHIPPED, []),
        (SHIPPED, DELIVERED, [DELIVERED]),
        (DELIVERED, DELIVERED, []),
    ],
)
def test_advance_moves_forward_through_every_step(current, target, path):
    assert advance_path(current, target) == path


@pytest.mark.parametrize(
    ("current", "target"),
    [(SHIPPED, SCHEDULED), (DELIVERED, SHIPPED), (DELIVERED, SCHEDULED),
     (CANCELLED, SHIPPED), (CANCELLED, SCHEDULED)],
)
def test_advance_never_goes_back_or_revives_a_cancelled_shipment(current, target):
    with pytest.raises(Conflict):
        advance_path(current, target)


def test_cancel_only_stops_scheduled_shipments():
    assert should_cancel(SCHEDULED) is True
    assert should_cancel(CANCELLED) is False
    for status in (SHIPPED, DELIVERED):
        with pytest.raises(Conflict, match="already shipped"):
            should_cancel(status)
