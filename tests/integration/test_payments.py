import time

import eventlet
import pytest
from nameko.exceptions import IncorrectSignature

from services.common.errors import NotFound, ValidationFailed, error_from_entry
from services.payments.models import Payment
from services.payments.service import PaymentsService
from tests.helpers import emitted_correlation_ids, emitted_events, row_count


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


def charge(order_id: int, customer_id: int = 5, amount_cents: int = 2500, currency: str = "EUR") -> dict:
    """A charge_many entry."""
    return {"order_id": order_id, "customer_id": customer_id, "amount_cents": amount_cents,
            "currency": currency}


def test_charge_many_charges_each_order_once(container, payments, monkeypatch):
    monkeypatch.setenv("PAYMENT_LATENCY_MS", "300")
    batch = [charge(order_id) for order_id in range(1, 10)] + [charge(10, customer_id=6, amount_cents=1013,
                                                                      currency="USD")]
    started = time.monotonic()
    answers = payments.charge_many(batch)
    # the processor is asked for the whole batch at once: one latency, not ten (3 s)
    assert time.monotonic() - started < 1.5

    assert [answer["order_id"] for answer in answers] == list(range(1, 11))
    assert all(set(answer) == {"order_id", "payment"} for answer in answers)
    captured, declined = answers[0]["payment"], answers[9]["payment"]
    assert captured == {"payment_id": captured["payment_id"], "order_id": 1, "customer_id": 5,
                        "amount_cents": 2500, "currency": "EUR", "status": "CAPTURED", "decline_reason": None}
    assert declined == {"payment_id": declined["payment_id"], "order_id": 10, "customer_id": 6,
                        "amount_cents": 1013, "currency": "USD", "status": "DECLINED",
                        "decline_reason": "card_declined_test_amount"}
    assert [answer["payment"]["status"] for answer in answers] == ["CAPTURED"] * 9 + ["DECLINED"]
    events = emitted_events(container)
    assert [kind for kind, _ in events] == ["payment_captured"] * 9 + ["payment_declined"]
    assert events[9][1] == {"order_id": 10, "customer_id": 6, "payment_id": declined["payment_id"],
                            "amount_cents": 1013, "currency": "USD", "reason": "card_declined_test_amount"}

    # a retry, even with other figures, returns the stored payments and charges nothing more
    assert payments.charge_many(batch) == answers
    assert payments.charge_many([charge(10, amount_cents=9900)]) == [answers[9]]
    assert payments.charge(1, 5, 2500, "EUR") == captured
    assert payments.get_payment(10) == declined
    assert row_count(container, Payment) == 10
    assert len(emitted_events(container)) == 10


def test_charge_many_returns_an_earlier_charge_instead_of_charging_again(container, payments):
    earlier = payments.charge(1, 5, 2500, "EUR")
    answers = payments.charge_many(
        [charge(1, amount_cents=9900), charge(2), charge(3), charge(3, amount_cents=1013)])

    assert answers[0] == {"order_id": 1, "payment": earlier}
    assert answers[1]["payment"]["status"] == "CAPTURED"
    # an order given twice is charged once, as its first entry says
    assert answers[2] == answers[3] and answers[3]["payment"]["amount_cents"] == 2500
    assert row_count(container, Payment) == 3
    assert [payload["order_id"] for _, payload in emitted_events(container)] == [1, 2, 3]
    assert payments.charge(2, 5, 2500, "EUR") == answers[1]["payment"]


def test_each_charge_of_a_batch_keeps_its_own_correlation_id(container, payments):
    payments.charge_many([charge(1) | {"correlation_id": "req-1"}, charge(2) | {"correlation_id": "req-2"}])
    assert emitted_correlation_ids(container) == [
        ("payment_captured", "req-1"), ("payment_captured", "req-2")]


def test_charge_many_refuses_a_malformed_entry_alone(container, payments):
    answers = payments.charge_many([
        charge(1),
        charge(2, amount_cents="100"),
        charge(3, currency="usd"),
        {"order_id": 4, "customer_id": 5, "amount_cents": 100},
        charge(5) | {"discount": 100},
        charge(0),
        charge(7),
    ])

    assert [answer["order_id"] for answer in answers] == [1, 2, 3, 4, 5, 0, 7]
    assert answers[0]["payment"]["status"] == answers[6]["payment"]["status"] == "CAPTURED"
    for answer in answers[1:6]:
        assert set(answer) == {"order_id", "error"}
        # the caller gets the error charge would have raised
        assert isinstance(error_from_entry(answer["error"]), ValidationFailed)
        assert answer["error"]["details"]["fields"]
    assert row_count(container, Payment) == 2
    assert [payload["order_id"] for _, payload in emitted_events(container)] == [1, 7]


BAD_BATCHES = [[], "1", None, charge(1), [1], [[charge(1)]], [charge(1)] * 501]


def test_a_malformed_batch_is_refused_and_writes_nothing(container, payments):
    for charges in BAD_BATCHES:
        with pytest.raises(ValidationFailed):
            payments.charge_many(charges)
    assert row_count(container, Payment) == 0
    assert emitted_events(container) == []


def test_concurrent_batches_for_overlapping_orders_charge_each_once(container, payments, rpc_client,
                                                                      monkeypatch):
    # a slow processor so that every batch is past its "already paid?" lookup before any commits
    monkeypatch.setenv("PAYMENT_LATENCY_MS", "200")
    # twelve batches of five of orders 1..8, half of them in reverse: opposite insertion orders
    batches = [[charge((call + index) % 8 + 1) for index in range(5)] for call in range(12)]
    batches = [batch if call % 2 else batch[::-1] for call, batch in enumerate(batches)]
    proxies = [rpc_client("payments", timeout=30) for _ in batches]
    results = list(eventlet.GreenPool(len(batches)).imap(
        lambda proxy, batch: proxy.charge_many(batch), proxies, batches))

    answers = [answer for result in results for answer in result]
    assert all(set(answer) == {"order_id", "payment"} for answer in answers)
    by_order = {}
    for answer in answers:
        by_order.setdefault(answer["order_id"], []).append(answer["payment"])
    assert sorted(by_order) == list(range(1, 9))
    assert all(payments_of_order == [payments_of_order[0]] * len(payments_of_order)
               for payments_of_order in by_order.values())
    assert row_count(container, Payment) == 8
    assert sorted(payload["order_id"] for _, payload in emitted_events(container)) == list(range(1, 9))
