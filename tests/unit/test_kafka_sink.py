"""The sink's wiring and record layout, without a broker."""

from __future__ import annotations

import json
import time
from importlib import import_module

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from services.common.config import SERVICES
from services.common.envelope import make_envelope
from services.kafka_sink.producer import KafkaPublisher, record_for
from services.kafka_sink.routes import event_routes, event_sources
from services.kafka_sink.service import KafkaSinkService
from services.kafka_sink.topics import EVENT_PARTITIONS, KPIS, all_topics


def test_every_declared_event_of_every_service_has_a_handler():
    declared = {(service, event_type) for service in SERVICES
                for event_type in import_module(f"services.{service}.schemas").EVENT_SCHEMAS}
    assert set(event_routes()) == declared
    handled = {(entrypoint.source_service, entrypoint.event_type)
               for name in dir(KafkaSinkService)
               for entrypoint in getattr(getattr(KafkaSinkService, name), "nameko_entrypoints", ())
               if hasattr(entrypoint, "event_type")}
    assert handled == declared


def test_one_topic_per_event_source_plus_heartbeat_and_kpis():
    topics = {topic.name: topic for topic in all_topics(event_sources())}
    assert set(topics) == {f"{source}.events" for source in SERVICES} | {"analytics.heartbeat", KPIS.name}
    assert topics["orders.events"].partitions == EVENT_PARTITIONS["orders"] == 3
    assert topics["customers.events"].partitions == 1


def test_a_record_is_keyed_by_aggregate_and_timed_by_occurred_at():
    event = make_envelope("orders", "order_confirmed", {"order_id": 42}, correlation_id="c", aggregate_id=42)
    event["occurred_at"] = "2026-01-02T03:04:05.678000+00:00"
    record = record_for(event)
    assert record["topic"] == "orders.events"
    assert record["key"] == b"42"
    assert record["timestamp_ms"] == 1767323045678
    assert json.loads(record["value"]) == event
    assert dict(record["headers"]) == {"event_id": event["event_id"].encode(), "type": b"order_confirmed"}


def test_an_event_without_aggregate_is_keyed_by_its_id():
    event = make_envelope("customers", "admin_ensured", {}, correlation_id=None)
    assert record_for(event)["key"] == event["event_id"].encode()


class FakeFuture:
    def __init__(self, error: Exception | None):
        self.error = error

    def get(self, timeout: float) -> None:
        if self.error:
            raise self.error


class FakeProducer:
    """Fails its sends with the errors it is given, in turn, then succeeds."""

    def __init__(self, errors: list[Exception]):
        self.errors = errors
        self.sent: list[dict] = []
        self.closed = False

    def send(self, topic: str, **record: object) -> FakeFuture:
        self.sent.append({"topic": topic, **record})
        return FakeFuture(self.errors.pop(0) if self.errors else None)

    def close(self, timeout: float) -> None:
        self.closed = True


def publisher_with(monkeypatch, producers: list[FakeProducer]) -> KafkaPublisher:
    publisher = KafkaPublisher("127.0.0.1:1")
    made = iter(producers)
    monkeypatch.setattr(publisher, "_new_producer", lambda: next(made))
    monkeypatch.setattr("services.kafka_sink.producer.eventlet.sleep", lambda seconds: None)
    return publisher


def test_while_kafka_is_unreachable_the_send_is_retried_on_a_new_producer(monkeypatch):
    broken, healthy = FakeProducer([KafkaTimeoutError("no metadata")]), FakeProducer([])
    publisher = publisher_with(monkeypatch, [broken, healthy])
    publisher.publish(make_envelope("orders", "order_created", {}, correlation_id=None, aggregate_id=1))
    assert broken.closed and len(healthy.sent) == 1
    assert publisher.retrying == 0
    assert not publisher.heartbeat()  # just failed: the backlog may still be on its way


def test_an_error_kafka_will_repeat_raises_so_the_message_is_retried_then_parked(monkeypatch):
    publisher = publisher_with(monkeypatch, [FakeProducer([MessageSizeTooLargeError("too big")])])
    with pytest.raises(MessageSizeTooLargeError):
        publisher.publish(make_envelope("orders", "order_created", {}, correlation_id=None, aggregate_id=1))


def test_heartbeats_carry_the_current_time(monkeypatch):
    producer = FakeProducer([])
    publisher = publisher_with(monkeypatch, [producer])
    before = int(time.time() * 1000)
    assert publisher.heartbeat()
    (sent,) = producer.sent
    assert sent["topic"] == "analytics.heartbeat"
    assert before <= sent["timestamp_ms"] <= time.time() * 1000
    assert json.loads(sent["value"])["type"] == "heartbeat"
