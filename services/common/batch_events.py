"""Batch event consumption: many event queues on one channel, a worker per batch, one ack per batch.

``services.common.messaging.event_handler`` runs a nameko worker per message and acks each one.
For a handler whose work per event is small and batches well (the Kafka sink writes one record
per event, and Kafka takes records in batches) that per-message machinery costs more than the
work itself. ``batch_event_handler(routes)`` consumes the queues of every ``(source, event type)``
route on one channel, with the same quorum queues, delivery limit and dead-lettering as
``event_handler``, and calls the method with a list of envelopes: up to ``max_batch`` of them, or
those that arrived within ``max_wait`` seconds of the first.

The method returns the indices of the events it could not handle (an empty list when all went
through), or a ``BatchOutcome`` that also names events whose input can never succeed. The others
are acked once it returned; the failed ones go back to their queues after the retry backoff, and
the broker parks a message that keeps failing in the dead-letter queue; the rejected ones are
parked at once. An exception fails the whole batch. A malformed envelope, or a body that does not
decode, is dead-lettered at once and never reaches the method.

A batch's messages are acked with one ``multiple=True`` ack of its last delivery tag. That acks
every unsettled message up to the tag on the channel, so batches are settled strictly in delivery
order (``AckWindow``): one that finishes early waits for those before it. Every channel operation
happens on the consumer's greenthread; workers only mark their batch finished.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import eventlet
from eventlet.event import Event
from kombu import Connection
from kombu.mixins import ConsumerMixin
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    DEFAULT_TRANSPORT_OPTIONS,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    TRANSPORT_OPTIONS_CONFIG_KEY,
)
from nameko.extensions import Entrypoint

from services.common.messaging import (
    dead_letter,
    declare_dead_letter_topology,
    delivery_count,
    envelope_errors,
    reliable_queue,
    retry_delay,
)
from services.common.outbox import event_exchange

log = logging.getLogger(__name__)

#: events handed to one worker at most
MAX_BATCH = 500
#: seconds the first event of a batch waits for more; also how often the consumer settles acks
MAX_WAIT = 0.05
#: unacknowledged messages the broker sends each queue's consumer ahead
PREFETCH = 1000
#: how long the consumer waits for a delivery while it holds nothing to hand out or settle (and so
#: how long a stop may wait for it): every read that times out costs about 0.5 ms of CPU, and one
#: every MAX_WAIT in every batch handler was most of an idle service's CPU
IDLE_WAIT = 0.25


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch method reports: the indices of the events to retry later, and of those whose
    input can never succeed (parked in the dead-letter queue at once)."""

    retry: Sequence[int] = ()
    reject: Sequence[int] = ()


@dataclass(eq=False)
class Batch:
    """The messages handed to one worker, in delivery order; ``failed`` is set once it finished."""

    messages: list[Any]
    failed: frozenset[int] | None = None
    rejected: frozenset[int] = frozenset()

    @property
    def finished(self) -> bool:
        return self.failed is not None


def _ack_up_to(message: Any) -> None:
    # a closed channel's messages are back in their queues already: nothing to ack
    if message.channel.connection:
        message.ack(multiple=True)


class AckWindow:
    """The batches not yet settled, oldest first."""

    def __init__(self) -> None:
        self._batches: deque[Batch] = deque()

    def __len__(self) -> int:
        return len(self._batches)

    def open(self, messages: list[Any]) -> Batch:
        """A batch of the messages received after every batch opened before."""
        batch = Batch(messages)
        self._batches.append(batch)
        return batch

    def settle(self) -> None:
        """Settle the finished batches at the head of the window; the others wait their turn.

        Consecutive batches that succeeded whole are acked together, with one multiple ack of
        the last one's last message. A batch with failures first sends that ack for the batches
        before it, then acks, requeues and dead-letters its own messages one by one.
        """
        pending: Any = None  # the last message of the successful batches not acked yet
        while self._batches and self._batches[0].finished:
            batch = self._batches.popleft()
            last = batch.messages[-1]
            if not batch.failed and not batch.rejected:
                if pending is not None and pending.channel is not last.channel:  # after a reconnection
                    _ack_up_to(pending)
                pending = last
                continue
            if pending is not None:
                _ack_up_to(pending)
                pending = None
            for index, message in enumerate(batch.messages):
                if not message.channel.connection:
                    continue
                if index in batch.rejected:
                    dead_letter(message)
                elif index in batch.failed:
                    message.requeue()
                else:
                    message.ack()
        if pending is not None:
            _ack_up_to(pending)


def queue_name(source: str, event_type: str, service: str, method: str | None = None) -> str:
    """The name nameko gives the queue of a handler method (``on_<source>_<event type>`` unless
    named).

    A service that moves from a handler per event to a batch handler names its old methods in its
    routes and so keeps its queues, and the events already waiting in them.
    """
    return f"evt-{source}-{event_type}--{service}.{method or f'on_{source}_{event_type}'}"


def handler_name(event_type: str) -> str:
    """``on_<event type>``: the name a service's handler of one event type had before a batch
    handler took over its queue; the batch keeps it for that queue, the inbox claims and the logs."""
    return f"on_{event_type}"


#: (source service, event type), or (source service, event type, the handler method that named its queue)
Route = tuple[str, str] | tuple[str, str, str]


class BatchEventHandler(Entrypoint, ConsumerMixin):
    def __init__(self, routes: Sequence[Route], max_batch: int = MAX_BATCH,
                 max_wait: float = MAX_WAIT, prefetch: int = PREFETCH, **kwargs: Any):
        self.routes = list(routes)
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.prefetch = prefetch
        super().__init__(**kwargs)

    def setup(self) -> None:
        service = self.container.service_name
        self.queues = [
            reliable_queue(queue_name(route[0], route[1], service, *route[2:]), event_exchange(route[0]),
                           route[1])
            for route in self.routes
        ]
        declare_dead_letter_topology(self.container.config[AMQP_URI_CONFIG_KEY])
        self.window = AckWindow()
        self._received: list[tuple[Any, Any]] = []  # (envelope, message) not in a batch yet
        self._first_received_at = 0.0
        self._consumers: list[Any] = []
        self._ready = Event()
        self._stopping = False
        self._thread: Any = None

    def start(self) -> None:
        self._thread = self.container.spawn_managed_thread(self.run,
                                                           identifier=f"{self.method_name} consumer")
        self._thread.link(self._thread_exited)
        self._ready.wait()

    def stop(self) -> None:
        """Stop consuming, hand what was received to a last batch and wait until every batch is settled."""
        self._stopping = True
        if self._thread is not None:
            self._thread.wait()

    def kill(self) -> None:
        # unacknowledged messages go back to their queues when the connection closes
        self.should_stop = True
        if self._thread is not None:
            self._thread.kill()

    def _thread_exited(self, thread: Any) -> None:
        if not self._ready.ready():  # it failed before consuming: let start() fail with it
            try:
                thread.wait()
            except Exception as exc:  # start() re-raises it
                self._ready.send_exception(exc)
            else:
                self._ready.send()

    # kombu's ConsumerMixin: connection, consumers and the drain loop's hooks

    @property
    def connection(self) -> Connection:
        config = self.container.config
        return Connection(
            config[AMQP_URI_CONFIG_KEY],
            heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            transport_options=config.get(TRANSPORT_OPTIONS_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS),
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        consumer = consumer_cls(queues=self.queues, callbacks=[self._on_message],
                                accept=self.container.accept)
        consumer.qos(prefetch_count=self.prefetch)
        return [consumer]

    def on_connection_revived(self) -> None:
        # before the consumers start: what the old channel received is back in the queues. (Not in
        # on_consume_ready: deliveries from the first queue arrive while the others are being
        # consumed, and dropping them there would let a multiple ack pass over them.)
        self._received = []

    def on_consume_ready(self, connection: Any, channel: Any, consumers: list[Any], **kwargs: Any) -> None:
        self._consumers = consumers
        if not self._ready.ready():
            self._ready.send()

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        log.error("dead-lettering an undecodable event from %s: %s", _origin(message), exc)
        dead_letter(message)

    def consume(self, limit: int | None = None, timeout: float | None = None, safety_interval: float = 1,
                **kwargs: Any) -> Any:
        """kombu's drain loop (ConsumerMixin.consume) with a read timeout that follows the work:
        ``max_wait`` while a batch gathers or waits to be settled, ``IDLE_WAIT`` otherwise."""
        with self.consumer_context(**kwargs) as (connection, _channel, _consumers):
            while not self.should_stop:
                self.on_iteration()
                busy = self._stopping or bool(self._received) or bool(self.window)
                try:
                    connection.drain_events(timeout=self.max_wait if busy else IDLE_WAIT)
                except TimeoutError:
                    connection.heartbeat_check()
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    yield

    def on_iteration(self) -> None:
        """Called between reads: settle finished batches, hand out a due batch, finish a stop."""
        self.window.settle()
        if self._received and (self._stopping or time.monotonic() - self._first_received_at >= self.max_wait):
            self._dispatch()
        if self._stopping:
            for consumer in self._consumers:
                consumer.cancel()
            self._consumers = []
            if not self.window:
                self.should_stop = True

    def _on_message(self, body: Any, message: Any) -> None:
        errors = envelope_errors(body)
        if errors:
            log.error("dead-lettering a malformed event from %s: %s", _origin(message), errors)
            dead_letter(message)
            return
        if not self._received:
            self._first_received_at = time.monotonic()
        self._received.append((body, message))
        if len(self._received) >= self.max_batch:
            self._dispatch()

    def _dispatch(self) -> None:
        received, self._received = self._received, []
        batch = self.window.open([message for _, message in received])
        # blocks while every worker is busy: the consumer then stops reading, and the broker holds back
        self.container.spawn_worker(self, ([envelope for envelope, _ in received],), {},
                                    handle_result=partial(self._finished, batch))

    def _finished(self, batch: Batch, worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        """Runs on the worker's greenthread: wait out the backoff of the failed events, mark the batch."""
        count = len(batch.messages)
        outcome = result if isinstance(result, BatchOutcome) else BatchOutcome(retry=result or ())
        failed = frozenset(range(count)) if exc_info is not None else frozenset(outcome.retry)
        rejected = frozenset() if exc_info is not None else frozenset(outcome.reject) - failed
        if failed:
            attempts = max(delivery_count(batch.messages[index]) for index in failed)
            delay = retry_delay(attempts)
            log.warning("%d of %d events failed in %s (attempt %d), requeued in %.1fs",
                        len(failed), count, self.method_name, attempts + 1, delay)
            eventlet.sleep(delay)
        batch.rejected = rejected
        batch.failed = failed
        return result, exc_info


def _origin(message: Any) -> str:
    info = message.delivery_info or {}
    return f"{info.get('exchange')}/{info.get('routing_key')}"


batch_event_handler = BatchEventHandler.decorator
