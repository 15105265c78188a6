import pytest

from services.payments.domain import (
    CAPTURED,
    DECLINED,
    RANDOM_DECLINE_REASON,
    REFUNDED,
    TEST_DECLINE_REASON,
    Decision,
    decide,
    failure_rate,
    latency_seconds,
    refundable,
)


def never_called() -> float:
    raise AssertionError("the random source must not be consulted")


@pytest.mark.parametrize("amount", [13, 1013, 99913])
def test_amounts_ending_in_13_cents_always_decline(amount):
    assert decide(amount, 0.0, never_called) == Decision(DECLINED, TEST_DECLINE_REASON)


@pytest.mark.parametrize("amount", [0, 12, 14, 113_00, 1014])
def test_other_amounts_capture_when_the_draw_passes(amount):
    assert decide(amount, 0.5, lambda: 0.5) == Decision(CAPTURED)


def test_random_decline_when_the_draw_is_under_the_rate():
    assert decide(1000, 0.5, lambda: 0.49) == Decision(DECLINED, RANDOM_DECLINE_REASON)


def test_rate_bounds():
    assert decide(1000, 1.0, lambda: 0.999999).status == DECLINED
    assert decide(1000, 0.0, lambda: 0.0).status == CAPTURED


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0.0), ("0.25", 0.25), ("1", 1.0), ("7", 1.0), ("-1", 0.0)]
)
def test_failure_rate_is_clamped_to_a_probability(raw, expected):
    assert failure_rate(raw) == expected


@pytest.mark.parametrize("raw", ["nan", "inf", "lots"])
def test_failure_rate_rejects_non_numbers(raw):
    with pytest.raises(ValueError):
        failure_rate(raw)


def test_latency_in_seconds_never_negative():
    assert latency_seconds("250") == 0.25
    assert latency_seconds("0") == 0
    assert latency_seconds("-5") == 0
    for raw in ("inf", "nan", "soon"):
        with pytest.raises(ValueError):
            latency_seconds(raw)


def test_only_captured_payments_are_refundable():
    assert refundable(CAPTURED)
    assert not refundable(DECLINED)
    assert not refundable(REFUNDED)
