"""The batch handler's ack rules, without a broker: what is acked, requeued, and when."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from services.common.batch_events import AckWindow, BatchEventHandler, queue_name
from services.common.telemetry import call_fields, entrypoint_kind


class FakeChannel:
    def __init__(self) -> None:
        self.connection: Any = object()  # kombu sets it to None when the channel closes
        self.log: list[tuple[str, int, bool]] = []


class FakeMessage:
    def __init__(self, channel: FakeChannel, tag: int):
        self.channel = channel
        self.tag = tag

    def ack(self, multiple: bool = False) -> None:
        self.channel.log.append(("ack", self.tag, multiple))

    def requeue(self) -> None:
        self.channel.log.append(("requeue", self.tag, False))

    def reject(self, requeue: bool) -> None:
        self.channel.log.append(("dead-letter" if not requeue else "requeue", self.tag, False))


def messages(channel: FakeChannel, *tags: int) -> list[Any]:
    return [FakeMessage(channel, tag) for tag in tags]


def test_consecutive_successful_batches_are_acked_with_one_multiple_ack():
    channel, window = FakeChannel(), AckWindow()
    first, second = window.open(messages(channel, 1, 2, 3)), window.open(messages(channel, 4, 5))
    first.failed = second.failed = frozenset()
    window.settle()
    assert channel.log == [("ack", 5, True)]
    assert len(window) == 0


def test_a_batch_finished_early_waits_for_the_batches_before_it():
    channel, window = FakeChannel(), AckWindow()
    first, second = window.open(messages(channel, 1, 2)), window.open(messages(channel, 3, 4))
    second.failed = frozenset()
    window.settle()
    # acking tag 4 with multiple=True would also ack 1 and 2, whose worker is still running
    assert channel.log == []
    first.failed = frozenset()
    window.settle()
    assert channel.log == [("ack", 4, True)]


def test_failed_events_are_requeued_and_no_multiple_ack_passes_over_them():
    channel, window = FakeChannel(), AckWindow()
    ok, mixed, after = (window.open(messages(channel, 1, 2)), window.open(messages(channel, 3, 4, 5)),
                        window.open(messages(channel, 6)))
    ok.failed, mixed.failed, after.failed = frozenset(), frozenset({1}), frozenset()
    window.settle()
    assert channel.log == [("ack", 2, True), ("ack", 3, False), ("requeue", 4, False), ("ack", 5, False),
                           ("ack", 6, True)]


def test_rejected_events_are_dead_lettered_at_once_and_no_multiple_ack_passes_over_them():
    channel, window = FakeChannel(), AckWindow()
    mixed, after = window.open(messages(channel, 1, 2, 3)), window.open(messages(channel, 4))
    mixed.rejected, mixed.failed, after.failed = frozenset({0}), frozenset({2}), frozenset()
    window.settle()
    assert channel.log == [("dead-letter", 1, False), ("ack", 2, False), ("requeue", 3, False),
                           ("ack", 4, True)]


def test_messages_of_a_closed_channel_are_left_to_the_broker():
    old, new, window = FakeChannel(), FakeChannel(), AckWindow()
    lost, failed_lost, current = (window.open(messages(old, 1, 2)), window.open(messages(old, 3)),
                                  window.open(messages(new, 1)))
    old.connection = None  # the connection dropped: the broker takes those messages back itself
    lost.failed, failed_lost.failed, current.failed = frozenset(), frozenset({0}), frozenset()
    window.settle()
    assert old.log == []
    assert new.log == [("ack", 1, True)]


def test_a_reconnection_between_successful_batches_acks_each_channel_separately():
    old, new, window = FakeChannel(), FakeChannel(), AckWindow()
    before, after = window.open(messages(old, 7)), window.open(messages(new, 1, 2))
    before.failed = after.failed = frozenset()
    window.settle()
    assert old.log == [("ack", 7, True)]
    assert new.log == [("ack", 2, True)]


def test_queues_keep_the_names_of_a_handler_per_event():
    assert queue_name("orders", "order_created", "kafka_sink") == \
        "evt-orders-order_created--kafka_sink.on_orders_order_created"
    # a service whose handlers were named otherwise names them in its routes
    assert queue_name("orders", "order_created", "notifications", "on_order_created") == \
        "evt-orders-order_created--notifications.on_order_created"


def test_telemetry_names_a_batch_call_and_counts_its_events():
    entrypoint = BatchEventHandler([("toys", "made")])
    assert entrypoint_kind(entrypoint) == "event_batch"
    worker_ctx = SimpleNamespace(entrypoint=entrypoint, args=([{}, {}, {}],), kwargs={})
    assert call_fields(worker_ctx, "event_batch") == {"events": 3}
