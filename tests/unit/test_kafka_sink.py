"""The sink's wiring and record layout, without a broker."""

from __future__ import annotations

import json
import time
from importlib import import_module

from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from services.common.config import SERVICES
from services.common.envelope import make_envelope
from services.kafka_sink.producer import KafkaPublisher, record_for
from services.kafka_sink.routes import event_routes, event_sources
from services.kafka_sink.service import KafkaSinkService
from services.kafka_sink.topics import EVENT_PARTITIONS, KPIS, all_topics


def test_every_declared_event_of_every_service_is_consumed():
    declared = {(service, event_type) for service in SERVICES
                for event_type in import_module(f"services.{service}.schemas").EVENT_SCHEMAS}
    assert set(event_routes()) == declared
    (entrypoint,) = KafkaSinkService.forward.nameko_entrypoints
    assert set(entrypoint.routes) == declared


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
    """Answers each send with the next of the outcomes it is given (None: acknowledged), then succeeds.

    An outcome that is a (exception,) tuple is raised by send itself, as kafka-python does when it
    has no metadata or the record is too large to send.
    """

    def __init__(self, outcomes: list[Exception | tuple[Exception] | None]):
        self.outcomes = outcomes
        self.sent: list[dict] = []
        self.closed = False

    def send(self, topic: str, **record: object) -> FakeFuture:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, tuple):
            raise outcome[0]
        self.sent.append({"topic": topic, **record})
        return FakeFuture(outcome)

    def close(self, timeout: float) -> None:
        self.closed = True


def publisher_with(monkeypatch, producers: list[FakeProducer]) -> KafkaPublisher:
    publisher = KafkaPublisher("127.0.0.1:1")
    made = iter(producers)
    monkeypatch.setattr(publisher, "_new_producer", lambda: next(made))
    monkeypatch.setattr("services.kafka_sink.producer.eventlet.sleep", lambda seconds: None)
    return publisher


def events(count: int) -> list[dict]:
    return [make_envelope("orders", "order_created", {"order_id": n}, correlation_id=None, aggregate_id=n)
            for n in range(count)]


def sent_ids(producer: FakeProducer) -> list[str]:
    return [json.loads(record["value"])["event_id"] for record in producer.sent]


def test_a_batch_is_sent_whole_and_nothing_is_refused(monkeypatch):
    producer = FakeProducer([])
    publisher = publisher_with(monkeypatch, [producer])
    batch = events(3)
    assert publisher.publish_batch(batch) == []
    assert sent_ids(producer) == [event["event_id"] for event in batch]


def test_while_kafka_is_unreachable_the_unacknowledged_records_are_sent_again_on_a_new_producer(monkeypatch):
    broken = FakeProducer([None, KafkaTimeoutError("delivery timed out"), None])
    healthy = FakeProducer([])
    publisher = publisher_with(monkeypatch, [broken, healthy])
    batch = events(3)
    assert publisher.publish_batch(batch) == []
    assert broken.closed
    assert sent_ids(healthy) == [batch[1]["event_id"]]
    assert publisher.retrying == 0
    assert not publisher.heartbeat()  # just failed: the backlog may still be on its way


def test_without_metadata_the_rest_of_the_batch_waits_for_the_next_producer(monkeypatch):
    broken = FakeProducer([None, (KafkaTimeoutError("no metadata"),)])
    healthy = FakeProducer([])
    publisher = publisher_with(monkeypatch, [broken, healthy])
    batch = events(4)
    assert publisher.publish_batch(batch) == []
    assert sent_ids(broken) == [batch[0]["event_id"]]
    assert sent_ids(healthy) == [event["event_id"] for event in batch[1:]]


def test_records_kafka_refuses_for_good_are_returned_the_rest_are_written(monkeypatch):
    too_big = MessageSizeTooLargeError("too big")
    producer = FakeProducer([None, too_big, (too_big,), None])
    publisher = publisher_with(monkeypatch, [producer])
    batch = events(4)
    assert publisher.publish_batch(batch) == [1, 2]
    assert sent_ids(producer) == [batch[0]["event_id"], batch[1]["event_id"], batch[3]["event_id"]]
    assert not producer.closed


def test_heartbeats_carry_the_current_time(monkeypatch):
    producer = FakeProducer([])
    publisher = publisher_with(monkeypatch, [producer])
    before = int(time.time() * 1000)
    assert publisher.heartbeat()
    (sent,) = producer.sent
    assert sent["topic"] == "analytics.heartbeat"
    assert before <= sent["timestamp_ms"] <= time.time() * 1000
    assert json.loads(sent["value"])["type"] == "heartbeat"


def test_an_event_whose_time_cannot_be_read_is_refused_alone(monkeypatch):
    producer = FakeProducer([])
    publisher = publisher_with(monkeypatch, [producer])
    batch = events(3)
    batch[1]["occurred_at"] = "yesterday"
    assert publisher.publish_batch(batch) == [1]
    assert sent_ids(producer) == [batch[0]["event_id"], batch[2]["event_id"]]
