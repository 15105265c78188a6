import eventlet
import pytest
from nameko.exceptions import IncorrectSignature

from services.common.errors import NotFound, ValidationFailed
from services.payments.models import Payment
from services.payments.service import PaymentsService
from tests.helpers import emitted_events, row_count


@pytest.fixture
def container(start_service, database_flavour):
    # enough workers for the concurrent-charge test to run every call at once
    return start_service(PaymentsService, flavour=database_flavour, max_workers=20)


@pytest.fixture
def payments(container, rpc_client):
    return rpc_client("payments")


def test_charge_is_idempotent_per_order(container, payments):
    first = payments.charge(1, 5, 2500, "EUR")
    assert first == {"payment_id": first["payment_id"], "order_id": 1, "customer_id": 5, "amount_cents": 2500,
                     "currency": "EUR", "status": "CAPTURED", "decline_reason": None}
    # a retry, even with other figures, returns the stored payment and charges nothing more
    assert payments.charge(1, 5, 2500, "EUR") == first
    assert payments.charge(1, 5, 9900, "USD") == first
    assert row_count(container, Payment) == 1

    assert payments.get_payment(1) == first
    assert payments.get_payment(1, customer_id=5) == first
    assert emitted_events(container) == [("payment_captured", {
        "order_id": 1, "customer_id": 5, "payment_id": first["payment_id"], "amount_cents": 2500,
        "currency": "EUR", "reason": None,
    })]


def test_get_payment_hides_other_customers_payments(container, payments):
    payments.charge(1, 5, 2500, "EUR")
    with pytest.raises(NotFound) as other:
        payments.get_payment(1, customer_id=6)
    with pytest.raises(NotFound) as missing:
        payments.get_payment(2)
    assert str(other.value).replace("1", "#") == str(missing.value).replace("2", "#")


def test_concurrent_charges_for_one_order_charge_once(container, payments, rpc_client, monkeypatch):
    # a slow processor so that every call is past its "already paid?" check before any commits
    monkeypatch.setenv("PAYMENT_LATENCY_MS", "200")
    proxies = [rpc_client("payments", timeout=30) for _ in range(20)]
    results = list(eventlet.GreenPool(20).imap(lambda proxy: proxy.charge(7, 3, 1999, "USD"), proxies))

    assert len({result["payment_id"] for result in results}) == 1
    assert all(result == results[0] for result in results)
    assert row_count(container, Payment) == 1
    assert len(emitted_events(container)) == 1


def test_amounts_ending_in_13_cents_are_declined_and_the_answer_is_kept(container, payments):
    declined = payments.charge(3, 4, 1013, "USD")
    assert declined["status"] == "DECLINED" and declined["decline_reason"] == "card_declined_test_amount"
    assert payments.charge(3, 4, 1013, "USD") == declined
    assert payments.get_payment(3)["status"] == "DECLINED"
    assert payments.refund(3) == {"order_id": 3, "refunded": False, "status": "DECLINED"}
    assert emitted_events(container) == [("payment_declined", {
        "order_id": 3, "customer_id": 4, "payment_id": declined["payment_id"], "amount_cents": 1013,
        "currency": "USD", "reason": "card_declined_test_amount",
    })]


def test_failure_rate_from_the_environment(container, payments, monkeypatch):
    monkeypatch.setenv("PAYMENT_FAILURE_RATE", "1.0")
    declined = payments.charge(1, 2, 5000, "GBP")
    assert (declined["status"], declined["decline_reason"]) == ("DECLINED", "card_declined")
    monkeypatch.setenv("PAYMENT_FAILURE_RATE", "0")
    # the stored decline stands for its order; a new order is decided afresh
    assert payments.charge(1, 2, 5000, "GBP") == declined
    assert payments.charge(2, 2, 5000, "GBP")["status"] == "CAPTURED"


def test_refund_is_idempotent(container, payments):
    charged = payments.charge(1, 5, 2500, "EUR")
    assert payments.refund(1) == {"order_id": 1, "refunded": True, "status": "REFUNDED"}
    assert payments.refund(1) == {"order_id": 1, "refunded": False, "status": "REFUNDED"}
    assert payments.refund(2) == {"order_id": 2, "refunded": False, "status": None}
    assert payments.get_payment(1)["status"] == "REFUNDED"
    # charging a refunded order again does not take the money a second time
    assert payments.charge(1, 5, 2500, "EUR")["status"] == "REFUNDED"
    assert [kind for kind, _ in emitted_events(container)] == ["payment_captured", "payment_refunded"]
    assert emitted_events(container)[-1][1] == {
        "order_id": 1, "customer_id": 5, "payment_id": charged["payment_id"], "amount_cents": 2500,
        "currency": "EUR", "reason": None,
    }


BAD_CALLS = [
    ("charge", ("1", 5, 100, "USD")),
    ("charge", (0, 5, 100, "USD")),
    ("charge", (1, -5, 100, "USD")),
    ("charge", (1, True, 100, "USD")),
    ("charge", (1, 5, -100, "USD")),
    ("charge", (1, 5, 12.5, "USD")),
    ("charge", (1, 5, "100", "USD")),
    ("charge", (1, 5, 10**13, "USD")),
    ("charge", (1, 5, 100, "usd")),
    ("charge", (1, 5, 100, "US")),
    ("charge", (1, 5, 100, "X" * 100_000)),
    ("charge", (1, 5, 100, "'; DROP TABLE payments; --")),
    ("charge", (1, 5, 100, None)),
    ("refund", ("1 OR 1=1",)),
    ("refund", (-1,)),
    ("get_payment", ("1",)),
    ("get_payment", (1, "5")),
    ("get_payment", (1, 0)),
]


def test_bad_input_is_refused_and_writes_nothing(container, payments):
    for method, args in BAD_CALLS:
        with pytest.raises(ValidationFailed):
            getattr(payments, method)(*args)
    with pytest.raises(IncorrectSignature):  # an unknown argument
        payments.charge(1, 5, 100, "USD", discount=100)
    with pytest.raises(NotFound):
        payments.get_payment(1)
    assert row_count(container, Payment) == 0
    assert emitted_events(container) == []
