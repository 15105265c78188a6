import re
import time

import pytest
from kombu import Connection, Producer
from nameko.events import event_handler
from nameko.exceptions import IncorrectSignature
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.common.envelope import make_envelope
from services.common.errors import Conflict, NotFound, ValidationFailed
from services.common.outbox import event_exchange
from services.shipping.service import ShippingService
from tests.helpers import publish_event, wait_for

SHIPPING_EVENTS = ("shipment_scheduled", "shipment_cancelled", "shipment_shipped", "shipment_delivered")


class ShippingEventsRecorder:
    """Stand-in consumer that keeps every shipping event it sees."""

    name = "shipping_events_recorder"
    received: list = []

    @event_handler("shipping", "shipment_scheduled")
    def scheduled(self, event: dict) -> None:
        self.received.append(event)

    @event_handler("shipping", "shipment_cancelled")
    def cancelled(self, event: dict) -> None:
        self.received.append(event)

    @event_handler("shipping", "shipment_shipped")
    def shipped(self, event: dict) -> None:
        self.received.append(event)

    @event_handler("shipping", "shipment_delivered")
    def delivered(self, event: dict) -> None:
        self.received.append(event)


def events_for(order_id: int) -> list[tuple[str, dict]]:
    """The order's shipping events in the order they happened (each type travels on a queue of its
    own, so they may arrive in another)."""
    events = sorted((e for e in ShippingEventsRecorder.received if e["payload"]["order_id"] == order_id),
                    key=lambda e: e["occurred_at"])
    return [(e["type"], e["payload"]) for e in events]


@pytest.fixture
def events(start_service):
    ShippingEventsRecorder.received = []
    start_service(ShippingEventsRecorder, database=False)
    return ShippingEventsRecorder.received


@pytest.fixture
def shipping_container(events, start_service, database_flavour):
    return start_service(ShippingService, flavour=database_flavour)


@pytest.fixture
def shipping(shipping_container, rpc_client):
    return rpc_client("shipping")


def test_schedule_is_idempotent_and_announced(shipping, events):
    shipment = shipping.schedule_shipment(10, 7)
    assert shipment["order_id"] == 10 and shipment["customer_id"] == 7
    assert shipment["status"] == "SCHEDULED" and shipment["shipment_id"] >= 1
    assert re.fullmatch(r"TRK[0-9A-F]{12}", shipment["tracking_number"])
    assert shipment["scheduled_at"].endswith("+00:00")
    assert shipment["shipped_at"] is None and shipment["delivered_at"] is None

    assert shipping.schedule_shipment(10, 7) == shipment
    assert shipping.get_shipment(10) == shipment
    assert shipping.get_shipment(10, 7) == shipment
    assert shipping.schedule_shipment(11, 7)["tracking_number"] != shipment["tracking_number"]
    racing = [shipping.schedule_shipment.call_async(12, 7) for _ in range(5)]
    assert len({r.result()["shipment_id"] for r in racing}) == 1

    wait_for(lambda: events_for(10) and events_for(11) and events_for(12),
             timeout=10, interval=0.05, what="the events of orders 10, 11 and 12")
    time.sleep(0.3)  # a duplicate would have arrived by now
    assert len(events_for(12)) == 1
    assert events_for(10) == [("shipment_scheduled", {
        "order_id": 10, "customer_id": 7, "shipment_id": shipment["shipment_id"],
        "tracking_number": shipment["tracking_number"]})]


def test_get_hides_other_customers_shipments(shipping):
    shipping.schedule_shipment(10, 7)
    with pytest.raises(NotFound):
        shipping.get_shipment(10, 8)
    with pytest.raises(NotFound):
        shipping.get_shipment(99)


def test_cancel_only_before_shipping(shipping, events):
    scheduled = shipping.schedule_shipment(10, 7)
    assert shipping.cancel_shipment(10) == {"order_id": 10, "cancelled": True}
    assert shipping.cancel_shipment(10) == {"order_id": 10, "cancelled": False}
    assert shipping.cancel_shipment(99) == {"order_id": 99, "cancelled": False}
    assert shipping.get_shipment(10)["status"] == "CANCELLED"
    with pytest.raises(Conflict):
        shipping.advance_shipment(10, "SHIPPED")
    # the order's shipment stays cancelled: scheduling again returns it unchanged
    assert shipping.schedule_shipment(10, 7)["status"] == "CANCELLED"

    shipping.schedule_shipment(20, 7)
    shipping.advance_shipment(20, "SHIPPED")
    with pytest.raises(Conflict, match="already shipped"):
        shipping.cancel_shipment(20)
    assert shipping.get_shipment(20)["status"] == "SHIPPED"

    wait_for(lambda: len(events_for(10)) == 2, timeout=10, interval=0.05, what="two events of order 10")
    assert [t for t, _ in events_for(10)] == ["shipment_scheduled", "shipment_cancelled"]
    assert events_for(10)[1][1]["tracking_number"] == scheduled["tracking_number"]


def test_advance_moves_forward_and_announces_every_step(shipping, events):
    shipping.schedule_shipment(10, 7)
    delivered = shipping.advance_shipment(10, "DELIVERED")
    assert delivered["status"] == "DELIVERED"
    assert delivered["shipped_at"] is not None and delivered["delivered_at"] is not None
    assert shipping.advance_shipment(10, "DELIVERED") == delivered  # no-op
    with pytest.raises(Conflict):
        shipping.advance_shipment(10, "SHIPPED")
    with pytest.raises(Conflict):
        shipping.advance_shipment(10, "SCHEDULED")
    with pytest.raises(NotFound):
        shipping.advance_shipment(99, "SHIPPED")

    shipping.schedule_shipment(11, 7)
    assert shipping.advance_shipment(11, "SCHEDULED")["status"] == "SCHEDULED"  # no-op
    assert shipping.advance_shipment(11, "SHIPPED")["status"] == "SHIPPED"

    wait_for(lambda: len(events_for(10)) == 3 and len(events_for(11)) == 2,
             timeout=10, interval=0.05, what="every event of orders 10 and 11")
    time.sleep(0.3)
    assert [t for t, _ in events_for(10)] == ["shipment_scheduled", "shipment_shipped", "shipment_delivered"]
    assert [t for t, _ in events_for(11)] == ["shipment_scheduled", "shipment_shipped"]
    assert {p["customer_id"] for _, p in events_for(10)} == {7}


def test_timer_ships_then_delivers(shipping, events, monkeypatch):
    shipping.schedule_shipment(10, 7)
    shipping.schedule_shipment(11, 7)
    shipping.cancel_shipment(11)
    monkeypatch.setenv("SHIPPING_SHIP_AFTER_SECONDS", "0.2")
    monkeypatch.setenv("SHIPPING_DELIVER_AFTER_SECONDS", "0.5")

    wait_for(lambda: shipping.get_shipment(10)["status"] == "DELIVERED",
             timeout=10, interval=0.05, what="the timer to deliver order 10")
    shipment = shipping.get_shipment(10)
    assert shipment["scheduled_at"] < shipment["shipped_at"] < shipment["delivered_at"]
    assert shipping.get_shipment(11)["status"] == "CANCELLED"
    wait_for(lambda: len(events_for(10)) == 3, timeout=10, interval=0.05, what="three events of order 10")
    assert [t for t, _ in events_for(10)] == ["shipment_scheduled", "shipment_shipped", "shipment_delivered"]
    assert events_for(10)[2][1] == {"order_id": 10, "customer_id": 7, "shipment_id": shipment["shipment_id"],
                                     "tracking_number": shipment["tracking_number"]}


def test_the_timers_events_carry_the_correlation_id_of_the_scheduling_call(shipping, events, rabbit_config,
                                                                            monkeypatch):
    with ServiceRpcProxy("shipping", rabbit_config, context_data={"correlation_id": "order-journey-10"},
                         timeout=10) as proxy:
        proxy.schedule_shipment(10, 7)
    monkeypatch.setenv("SHIPPING_SHIP_AFTER_SECONDS", "0.2")
    monkeypatch.setenv("SHIPPING_DELIVER_AFTER_SECONDS", "0.5")
    wait_for(lambda: len(events_for(10)) == 3, timeout=10, interval=0.05, what="three events of order 10")
    # the timer's worker has no correlation id of its own: its events carry the order's
    assert [(e["type"], e["correlation_id"]) for e in events if e["payload"]["order_id"] == 10] == [
        ("shipment_scheduled", "order-journey-10"), ("shipment_shipped", "order-journey-10"),
        ("shipment_delivered", "order-journey-10")]


def test_timer_works_through_more_than_one_batch(shipping, monkeypatch):
    # delivery far away, set before the first shipment is scheduled: the timer ships the early ones
    # while the later are still being scheduled, and a slow machine must not move any past SHIPPED
    monkeypatch.setenv("SHIPPING_DELIVER_AFTER_SECONDS", "3600")
    monkeypatch.setenv("SHIPPING_SHIP_AFTER_SECONDS", "0")
    for order_id in range(1, 106):
        shipping.schedule_shipment(order_id, 7)
    wait_for(lambda: shipping.get_shipment(105)["status"] == "SHIPPED",
             timeout=15, interval=0.05, what="the timer to ship order 105")
    assert {shipping.get_shipment(order_id)["status"] for order_id in range(1, 106)} == {"SHIPPED"}


def test_one_tick_moves_several_shipments_and_announces_each_in_id_order(shipping, events, rabbit_config,
                                                                         monkeypatch):
    monkeypatch.setenv("SHIPPING_SHIP_AFTER_SECONDS", "3600")
    monkeypatch.setenv("SHIPPING_DELIVER_AFTER_SECONDS", "3600")
    scheduled = {}
    for order_id in (31, 30, 32):  # shipment ids follow the scheduling, not the order ids
        context_data = {"correlation_id": f"journey-{order_id}"}
        with ServiceRpcProxy("shipping", rabbit_config, context_data=context_data, timeout=10) as proxy:
            scheduled[order_id] = proxy.schedule_shipment(order_id, 7)
    monkeypatch.setenv("SHIPPING_SHIP_AFTER_SECONDS", "0")

    wait_for(lambda: {shipping.get_shipment(order_id)["status"] for order_id in scheduled} == {"SHIPPED"},
             timeout=10, interval=0.05, what="the timer to ship orders 30 to 32")
    # one tick moved them all: it stamps its every move with the same moment
    assert len({shipping.get_shipment(order_id)["shipped_at"] for order_id in scheduled}) == 1
    wait_for(lambda: len([e for e in events if e["type"] == "shipment_shipped"]) == 3,
             timeout=10, interval=0.05, what="three shipment_shipped events")
    time.sleep(0.3)  # a duplicate would have arrived by now
    shipped = sorted((e for e in events if e["type"] == "shipment_shipped"), key=lambda e: e["occurred_at"])
    assert [(e["payload"], e["correlation_id"]) for e in shipped] == [
        ({"order_id": order_id, "customer_id": 7, "shipment_id": shipment["shipment_id"],
          "tracking_number": shipment["tracking_number"]}, f"journey-{order_id}")
        for order_id, shipment in sorted(scheduled.items(), key=lambda item: item[1]["shipment_id"])]


def test_schedule_rejects_bad_input_and_writes_nothing(shipping):
    bad_calls = [
        ("1", 7), (10, "7"), (-1, 7), (10, 0), (10, True), (1.5, 7), (None, 7),
        ("1; DROP TABLE shipments; --", 7), ("x" * 100_000, 7), ({"order_id": 10}, 7),
    ]
    for args in bad_calls:
        with pytest.raises(ValidationFailed):
            shipping.schedule_shipment(*args)
    with pytest.raises(IncorrectSignature):
        shipping.schedule_shipment(order_id=10, customer_id=7, evil=1)
    for order_id in (1, 10):
        with pytest.raises(NotFound):
            shipping.get_shipment(order_id)


def test_other_rpcs_reject_bad_input_and_change_nothing(shipping):
    shipping.schedule_shipment(10, 7)
    bad_ids = ["10", -10, 0, 10.0, True, "10 OR 1=1", "x" * 100_000, [10]]
    for bad in bad_ids:
        with pytest.raises(ValidationFailed):
            shipping.cancel_shipment(bad)
        with pytest.raises(ValidationFailed):
            shipping.get_shipment(bad)
        with pytest.raises(ValidationFailed):
            shipping.get_shipment(10, bad)
        with pytest.raises(ValidationFailed):
            shipping.advance_shipment(bad, "SHIPPED")
    for bad_status in ["CANCELLED", "shipped", "", "SHIPPED'; --", "S" * 100_000, 2, None, ["SHIPPED"]]:
        with pytest.raises(ValidationFailed):
            shipping.advance_shipment(10, bad_status)
    with pytest.raises(IncorrectSignature):
        shipping.advance_shipment(10, "SHIPPED", force=True)
    with pytest.raises(IncorrectSignature):
        shipping.cancel_shipment(10, evil=1)
    assert shipping.get_shipment(10)["status"] == "SCHEDULED"


def confirmed(order_id: int, customer_id: int = 7) -> dict:
    return make_envelope("orders", "order_confirmed",
                         {"order_id": order_id, "customer_id": customer_id, "status": "CONFIRMED",
                          "total_cents": 100, "currency": "USD", "reason": None},
                         correlation_id=f"confirm-{order_id}", aggregate_id=order_id)


def test_a_confirmed_order_gets_one_shipment_with_its_correlation_id(shipping_container, shipping, events,
                                                                     rabbit_config):
    event = confirmed(21)
    for _ in range(2):  # a redelivery schedules nothing more
        with entrypoint_waiter(shipping_container, "on_orders_confirmed"):
            publish_event(rabbit_config["AMQP_URI"], event)
    assert shipping.get_shipment(21)["status"] == "SCHEDULED"
    wait_for(lambda: events_for(21), what="the shipment_scheduled event")
    time.sleep(0.5)  # a second shipment_scheduled would have arrived by now
    [scheduled] = [e for e in events if e["payload"]["order_id"] == 21]
    assert scheduled["correlation_id"] == "confirm-21"


def test_a_cancellation_that_overtakes_the_confirmation_leaves_nothing_to_ship(shipping_container, shipping,
                                                                               events, rabbit_config):
    assert shipping.cancel_shipment(22, 7) == {"order_id": 22, "cancelled": False}
    with entrypoint_waiter(shipping_container, "on_orders_confirmed"):
        publish_event(rabbit_config["AMQP_URI"], confirmed(22))
    assert shipping.get_shipment(22)["status"] == "CANCELLED"
    time.sleep(0.5)  # a shipment_scheduled would have arrived by now
    assert events_for(22) == []


def publish_together(amqp_uri: str, envelopes: list[dict]) -> None:
    """Publish like ``publish_event``, over one connection, so they arrive within one batch's wait."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel())
        for envelope in envelopes:
            exchange = event_exchange(envelope["source"])
            producer.publish(envelope, exchange=exchange, routing_key=envelope["type"], serializer="json",
                             delivery_mode=2, declare=[exchange], retry=True)


def test_confirmations_arriving_together_schedule_one_shipment_per_order(shipping, events, rabbit_config):
    assert shipping.cancel_shipment(43, 7) == {"order_id": 43, "cancelled": False}
    existing = shipping.schedule_shipment(44, 7)
    # 41 twice, under two event ids: its first confirmation schedules, the second finds that shipment
    publish_together(rabbit_config["AMQP_URI"],
                     [confirmed(41), confirmed(42, 8), confirmed(41), confirmed(43), confirmed(44)])

    wait_for(lambda: events_for(41) and events_for(42), timeout=10, interval=0.05,
             what="the shipment_scheduled events of orders 41 and 42")
    time.sleep(0.5)  # a duplicate, or an event of order 43 or a second of 44, would have arrived by now
    for order_id, customer_id in ((41, 7), (42, 8)):
        shipment = shipping.get_shipment(order_id, customer_id)
        assert shipment["status"] == "SCHEDULED"
        assert events_for(order_id) == [("shipment_scheduled", {
            "order_id": order_id, "customer_id": customer_id, "shipment_id": shipment["shipment_id"],
            "tracking_number": shipment["tracking_number"]})]
        [scheduled] = [e for e in events if e["payload"]["order_id"] == order_id]
        assert scheduled["correlation_id"] == f"confirm-{order_id}"
    assert shipping.get_shipment(43)["status"] == "CANCELLED" and events_for(43) == []
    assert shipping.get_shipment(44) == existing and len(events_for(44)) == 1
