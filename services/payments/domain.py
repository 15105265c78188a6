"""The simulated card processor's decisions and the payment state rules.

Pure functions: the service reads the environment and supplies the random
source, so every rule here is unit-testable and deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

CAPTURED = "CAPTURED"
DECLINED = "DECLINED"
REFUNDED = "REFUNDED"

#: test/demo convention: an amount ending in 13 cents (e.g. 1013) is always declined
TEST_DECLINE_CENTS = 13
TEST_DECLINE_REASON = "card_declined_test_amount"
RANDOM_DECLINE_REASON = "card_declined"

EVENT_TYPES = {CAPTURED: "payment_captured", DECLINED: "payment_declined"}


@dataclass(frozen=True)
class Decision:
    status: str
    decline_reason: str | None = None


def decide(amount_cents: int, failure_rate: float, draw: Callable[[], float] = random.random) -> Decision:
    """What the processor answers; ``draw`` returns a float in [0, 1)."""
    if amount_cents % 100 == TEST_DECLINE_CENTS:
        return Decision(DECLINED, TEST_DECLINE_REASON)
    if draw() < failure_rate:
        return Decision(DECLINED, RANDOM_DECLINE_REASON)
    return Decision(CAPTURED)


def failure_rate(raw: str) -> float:
    """``PAYMENT_FAILURE_RATE`` as a probability; out-of-range values are clamped."""
    rate = float(raw)
    if not math.isfinite(rate):
        raise ValueError(f"PAYMENT_FAILURE_RATE must be a number between 0 and 1, not {raw!r}")
    return min(max(rate, 0.0), 1.0)


def latency_seconds(raw: str) -> float:
    """``PAYMENT_LATENCY_MS`` in seconds, never negative."""
    millis = float(raw)
    if not math.isfinite(millis):
        raise ValueError(f"PAYMENT_LATENCY_MS must be a number of milliseconds, not {raw!r}")
    return max(millis, 0.0) / 1000


def refundable(status: str) -> bool:
    """Only captured money can go back; a decline took nothing, a refund already returned it."""
    return status == CAPTURED
