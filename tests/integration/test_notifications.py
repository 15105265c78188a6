import logging
from typing import Any

import pytest
from nameko.exceptions import IncorrectSignature
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import create_engine, text

from services.common.envelope import make_envelope
from services.common.errors import ValidationFailed
from services.notifications.service import NotificationsService
from tests.helpers import dead_lettered_ids, publish_event, wait_for

#: (source, event type, payload) for every event that notifies someone
EVENTS = [
    ("customers", "customer_registered", {"customer_id": 7, "name": "Ada"}),
    ("orders", "order_created", {"customer_id": 7, "order_id": 42}),
    ("orders", "order_confirmed", {"customer_id": 7, "order_id": 42}),
    ("orders", "order_rejected", {"customer_id": 7, "order_id": 43, "reason": "out of stock"}),
    ("orders", "order_cancelled", {"customer_id": 7, "order_id": 44, "reason": "payment failed"}),
    ("orders", "order_shipped", {"customer_id": 7, "order_id": 42, "tracking_number": "TRK0123456789AB"}),
    ("orders", "order_delivered", {"customer_id": 7, "order_id": 42}),
    ("payments", "payment_declined",
     {"customer_id": 7, "order_id": 44, "reason": "card expired", "amount_cents": 1999}),
]


def envelope(source: str, event_type: str, payload: dict) -> dict[str, Any]:
    return make_envelope(source, event_type, payload, correlation_id="test",
                         aggregate_id=payload.get("order_id"))


@pytest.fixture
def service(start_service, database_flavour):
    return start_service(NotificationsService, flavour=database_flavour)


@pytest.fixture
def notifications(service, rpc_client):
    return rpc_client("notifications")


def test_every_event_notifies_its_customer(notifications, rabbit_config, caplog):
    caplog.set_level(logging.INFO, logger="services.notifications.service")
    for source, event_type, payload in EVENTS:
        publish_event(rabbit_config["AMQP_URI"], envelope(source, event_type, payload))
    wait_for(lambda: notifications.list_notifications(7)["total"] == len(EVENTS) + 1,
             timeout=10, interval=0.05, what="a notification for every event")

    items = notifications.list_notifications(7, 1, 100)["items"]
    by_type: dict[str, list[dict]] = {}
    for item in items:
        by_type.setdefault(item["event_type"], []).append(item)
    assert set(by_type) == {event_type for _, event_type, _ in EVENTS}
    assert all(item["customer_id"] == 7 and item["created_at"].endswith("+00:00") for item in items)
    assert "Ada" in by_type["customer_registered"][0]["body"]
    assert "#42" in by_type["order_created"][0]["subject"]
    assert "out of stock" in by_type["order_rejected"][0]["body"]
    assert "payment failed" in by_type["order_cancelled"][0]["body"]
    assert "card expired" in by_type["payment_declined"][0]["body"]
    shipped = by_type["order_shipped"]
    assert sorted(n["channel"] for n in shipped) == ["email", "sms"]
    assert all("TRK0123456789AB" in n["body"] for n in shipped)
    assert notifications.list_notifications(8)["total"] == 0

    # one line per event, naming every channel it went out on
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("notified")]
    assert len(sent) == len(EVENTS)
    assert "notified customer_id=7 by email, sms: 'Order #42 shipped'" in sent


def test_newest_first_and_paged(service, notifications, rabbit_config):
    for order_id in (1, 2, 3):
        with entrypoint_waiter(service, "notify"):
            publish_event(rabbit_config["AMQP_URI"],
                          envelope("orders", "order_confirmed", {"customer_id": 7, "order_id": order_id}))
    first = notifications.list_notifications(7, 1, 2)
    assert first["total"] == 3 and first["page"] == 1 and first["per_page"] == 2
    assert [n["subject"] for n in first["items"]] == ["Order #3 confirmed", "Order #2 confirmed"]
    assert [n["subject"] for n in notifications.list_notifications(7, page=2, per_page=2)["items"]] == [
        "Order #1 confirmed"]
    assert notifications.list_notifications(7, page=3, per_page=2)["items"] == []


def test_a_redelivered_event_notifies_once(service, notifications, rabbit_config):
    event = envelope("orders", "order_shipped", {"customer_id": 7, "order_id": 42, "tracking_number": "TRK1"})
    for _ in range(2):
        with entrypoint_waiter(service, "notify"):
            publish_event(rabbit_config["AMQP_URI"], event)
    assert notifications.list_notifications(7)["total"] == 2  # one email and one sms


@pytest.mark.parametrize("payload", [
    {"order_id": 42},
    {"customer_id": "7", "order_id": 42},
    {"customer_id": 7},
    {"customer_id": 7, "order_id": "42; DROP TABLE notifications"},
    {"customer_id": 7, "order_id": 42, "reason": {"nested": True}},
])
def test_an_invalid_payload_is_dead_lettered_and_writes_nothing(service, notifications, rabbit_config,
                                                                payload):
    event = envelope("orders", "order_cancelled", payload)
    with entrypoint_waiter(service, "notify") as result:
        publish_event(rabbit_config["AMQP_URI"], event)
    assert result.get().reject == [0]  # refused as invalid, not retried
    assert dead_lettered_ids(rabbit_config, 1) == {event["event_id"]}
    assert notifications.list_notifications(7)["total"] == 0


def test_a_welcome_without_customer_is_dead_lettered(service, notifications, rabbit_config):
    event = envelope("customers", "customer_registered", {"email": "ada@example.com"})
    with entrypoint_waiter(service, "notify") as result:
        publish_event(rabbit_config["AMQP_URI"], event)
    assert result.get().reject == [0]
    assert dead_lettered_ids(rabbit_config, 1) == {event["event_id"]}


def test_list_rejects_bad_input(notifications):
    bad_calls = [
        ("7",), (-7,), (0,), (True,), (7.0,), (None,), ("7 OR 1=1",), ("x" * 100_000,),
        (7, 0), (7, "1"), (7, 1, 101), (7, 1, -1), (7, 10**9),
    ]
    for args in bad_calls:
        with pytest.raises(ValidationFailed):
            notifications.list_notifications(*args)
    with pytest.raises(IncorrectSignature):
        notifications.list_notifications(7, evil=1)


def test_an_invalid_event_in_a_batch_is_parked_alone_and_the_others_notify(service, notifications,
                                                                         rabbit_config):
    good = envelope("orders", "order_confirmed", {"customer_id": 7, "order_id": 5})
    bad = envelope("orders", "order_cancelled", {"order_id": 6})
    again = envelope("orders", "order_delivered", {"customer_id": 7, "order_id": 5})
    for event in (good, bad, again):
        publish_event(rabbit_config["AMQP_URI"], event)
    wait_for(lambda: notifications.list_notifications(7)["total"] == 2, timeout=10, what="two notifications")
    assert dead_lettered_ids(rabbit_config, 1) == {bad["event_id"]}
    assert {n["event_type"] for n in notifications.list_notifications(7)["items"]} == {"order_confirmed",
                                                                                       "order_delivered"}
    # each event was claimed under its own handler's name, as before batches: a redelivery of an event
    # processed before the upgrade is still recognised
    engine = create_engine(service.config["DB_URIS"]["notifications:Base"])
    with engine.connect() as connection:
        claims = set(connection.execute(text("select handler, event_id from processed_events")).all())
    engine.dispose()
    assert claims == {("notifications.on_order_confirmed", good["event_id"]),
                      ("notifications.on_order_delivered", again["event_id"])}
