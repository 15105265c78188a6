"""The batch event handler against the real RabbitMQ: batching across queues, acks only after the
handler, redelivery of failed events, dead-lettering, and a stop that settles what is in flight."""

from __future__ import annotations

import subprocess

import eventlet
import pytest
from kombu import Connection

from services.common.batch_events import batch_event_handler, queue_name
from services.common.envelope import make_envelope
from tests.helpers import dead_lettered_ids, publish_event, wait_for

ROUTES = [("toys", "made"), ("toys", "sold")]


class ToyService:
    """Records each batch's event ids; fails the events named in ``fail``; raises once when asked."""

    name = "toy_batches"
    batches: list[list[str]] = []
    fail: set[str] = set()
    raise_once = False
    pause = 0.0

    @batch_event_handler(ROUTES, max_batch=50)
    def consume(self, events: list[dict]) -> list[int]:
        ToyService.batches.append([event["event_id"] for event in events])
        if ToyService.pause:
            eventlet.sleep(ToyService.pause)
        if ToyService.raise_once:
            ToyService.raise_once = False
            raise RuntimeError("the handler broke")
        return [index for index, event in enumerate(events) if event["event_id"] in ToyService.fail]


@pytest.fixture(autouse=True)
def fresh_toys(monkeypatch):
    ToyService.batches, ToyService.fail, ToyService.raise_once, ToyService.pause = [], set(), False, 0.0
    monkeypatch.setenv("EVENT_RETRY_BASE_SECONDS", "0.05")


def toy_event(event_type: str = "made") -> dict:
    return make_envelope("toys", event_type, {"toy": 1}, correlation_id="test", aggregate_id=1)


def seen() -> list[str]:
    return [event_id for batch in ToyService.batches for event_id in batch]


def waiting_in_queues(rabbit_config: dict) -> int:
    """Messages ready in the handler's queues: unacknowledged ones count once their channel closed."""
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        channel = connection.channel()
        return sum(channel.queue_declare(queue_name(source, event_type, ToyService.name), passive=True)
                   .message_count for source, event_type in ROUTES)


def test_events_of_several_queues_arrive_in_batches_and_are_acked_after_the_handler(start_service,
                                                                                   rabbit_config):
    start_service(ToyService, database=False).stop()  # declares the queues
    events = [toy_event("made" if n % 2 else "sold") for n in range(120)]
    for event in events:
        publish_event(rabbit_config["AMQP_URI"], event)
    container = start_service(ToyService, database=False)
    wait_for(lambda: len(seen()) >= len(events), what="every event to be handled")
    container.stop()
    assert sorted(seen()) == sorted(event["event_id"] for event in events)
    sizes = [len(batch) for batch in ToyService.batches]
    assert max(sizes) > 1 and max(sizes) <= 50
    types = {event["event_id"]: event["type"] for event in events}
    assert any({types[event_id] for event_id in batch} == {"made", "sold"} for batch in ToyService.batches)
    assert waiting_in_queues(rabbit_config) == 0


def test_a_failed_event_is_redelivered_until_parked_while_the_others_are_acked(start_service, rabbit_config):
    container = start_service(ToyService, database=False)
    events = [toy_event() for _ in range(3)]
    ToyService.fail = {events[1]["event_id"]}
    for event in events:
        publish_event(rabbit_config["AMQP_URI"], event)
    # the queues' delivery limit is 4 (EVENT_MAX_REDELIVERIES): five deliveries, then the dead letters
    assert dead_lettered_ids(rabbit_config, 1) == {events[1]["event_id"]}
    assert seen().count(events[1]["event_id"]) == 5
    container.stop()
    assert seen().count(events[0]["event_id"]) == seen().count(events[2]["event_id"]) == 1
    assert waiting_in_queues(rabbit_config) == 0


def test_a_handler_exception_sends_the_whole_batch_again(start_service, rabbit_config):
    container = start_service(ToyService, database=False)
    ToyService.raise_once = True
    events = [toy_event() for _ in range(3)]
    for event in events:
        publish_event(rabbit_config["AMQP_URI"], event)
    ids = {event["event_id"] for event in events}
    wait_for(lambda: all(seen().count(event_id) == 2 for event_id in ids), what="each event twice")
    container.stop()
    assert waiting_in_queues(rabbit_config) == 0
    assert dead_lettered_ids(rabbit_config, 1, timeout=0.5) == set()


def test_a_malformed_event_is_dead_lettered_and_the_rest_handled(start_service, rabbit_config):
    container = start_service(ToyService, database=False)
    good = toy_event()
    malformed = {"event_id": "not-an-envelope", "type": "made", "source": "toys"}
    publish_event(rabbit_config["AMQP_URI"], malformed)
    publish_event(rabbit_config["AMQP_URI"], good)
    wait_for(lambda: good["event_id"] in seen(), what="the good event")
    assert dead_lettered_ids(rabbit_config, 1) == {"not-an-envelope"}
    container.stop()
    assert seen() == [good["event_id"]]


def test_stopping_waits_for_the_batch_in_flight_and_acks_it(start_service, rabbit_config):
    container = start_service(ToyService, database=False)
    ToyService.pause = 1.0
    event = toy_event()
    publish_event(rabbit_config["AMQP_URI"], event)
    wait_for(lambda: ToyService.batches, what="the batch to start")
    container.stop()  # returns once the batch finished and its ack went out
    assert seen() == [event["event_id"]]
    assert waiting_in_queues(rabbit_config) == 0


def test_after_the_connection_drops_every_event_is_handled_and_acked(start_service, rabbit_config):
    container = start_service(ToyService, database=False)
    ToyService.pause = 5.0  # the first batch is still in flight when the connection drops
    events = [toy_event() for _ in range(20)]
    for event in events:
        publish_event(rabbit_config["AMQP_URI"], event)
    wait_for(lambda: ToyService.batches, what="a batch in flight")
    in_flight = list(ToyService.batches[0])
    vhost = rabbit_config["AMQP_URI"].rsplit("/", 1)[1]
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost, "test: connection lost"],
                   check=True, capture_output=True)
    ToyService.pause = 0.0
    # its ack could not go out: the broker delivers those events again, on the new connection
    wait_for(lambda: all(seen().count(event_id) == 2 for event_id in in_flight),
             what="the batch in flight to come again")
    wait_for(lambda: {event["event_id"] for event in events} <= set(seen()), what="every event")
    container.stop()
    assert waiting_in_queues(rabbit_config) == 0
