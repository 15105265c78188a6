"""Reliable event consumption: quorum queues, retries with backoff, dead letters.

Every handler queue is a RabbitMQ quorum queue with a delivery limit and a
dead-letter exchange, so the broker itself counts attempts and parks a message
that keeps failing. A message is acked only after its handler returned, i.e.
after its effects committed. Input that can never succeed (a malformed
envelope, a payload failing validation) is dead-lettered at once.
"""

from __future__ import annotations

import logging
from typing import Any

import eventlet
from kombu import Connection, Exchange, Queue
from nameko.events import EventHandler

from services.common.config import setting
from services.common.envelope import EnvelopeSchema
from services.common.errors import ValidationFailed

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "dead-letters"
DEAD_LETTER_QUEUE = "dead-letters"
#: a queue name's header in a dead-lettered message points back to it
ORIGIN_HEADER = "x-first-death-queue"
#: one instance for every message: building a marshmallow schema deep-copies its fields
ENVELOPE_SCHEMA = EnvelopeSchema()


def dead_letter_topology() -> tuple[Exchange, Queue]:
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="fanout", durable=True)
    queue = Queue(
        DEAD_LETTER_QUEUE,
        exchange=exchange,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    return exchange, queue


def declare_dead_letter_topology(amqp_uri: str) -> None:
    exchange, queue = dead_letter_topology()
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        exchange(channel).declare()
        queue(channel).declare()


def reliable_queue(name: str, exchange: Exchange, event_type: str) -> Queue:
    """An event handler's queue: quorum, bound to ``exchange`` by ``event_type``, with a delivery
    limit and at-least-once dead-lettering."""
    return Queue(
        name,
        exchange=exchange,
        routing_key=event_type,
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": int(setting("EVENT_MAX_REDELIVERIES", "4")),
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            # at-least-once dead-lettering needs reject-publish overflow
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def envelope_errors(body: Any) -> dict[str, Any]:
    """Why ``body`` is not an event envelope (empty when it is one)."""
    return ENVELOPE_SCHEMA.validate(body) if isinstance(body, dict) else {"_": "not an object"}


def dead_letter(message: Any) -> None:
    """Park ``message`` in the dead-letter queue at once (unless its channel is gone: then the
    broker has already taken it back)."""
    if message.channel.connection:
        message.reject(requeue=False)


def delivery_count(message: Any) -> int:
    """How often the broker delivered ``message`` before (a quorum queue counts it)."""
    return int((message.headers or {}).get("x-delivery-count", 0))


def retry_delay(delivery_count: int) -> float:
    """Exponential backoff before a failed message goes back to its queue."""
    base = float(setting("EVENT_RETRY_BASE_SECONDS", "0.2"))
    return min(base * 2 ** delivery_count, float(setting("EVENT_RETRY_MAX_SECONDS", "5")))


class ReliableEventHandler(EventHandler):
    def __init__(self, source_service: str, event_type: str, **kwargs: Any):
        super().__init__(source_service, event_type, requeue_on_error=True, **kwargs)

    def setup(self) -> None:
        super().setup()
        # same name, exchange and binding as nameko's, but a quorum queue
        self.queue = reliable_queue(self.queue.name, self.queue.exchange, self.event_type)
        declare_dead_letter_topology(self.container.config["AMQP_URI"])

    def handle_message(self, body: Any, message: Any) -> None:
        errors = envelope_errors(body)
        if errors:
            log.error("dead-lettering malformed event on %s: %s", self.queue.name, errors)
            dead_letter(message)
            return
        super().handle_message(body, message)

    def handle_message_processed(self, message: Any, result: Any = None, exc_info: Any = None) -> None:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        elif isinstance(exc_info[1], ValidationFailed):
            log.error("dead-lettering invalid event on %s: %s", self.queue.name, exc_info[1].details)
            dead_letter(message)
        else:
            attempts = delivery_count(message)
            delay = retry_delay(attempts)
            log.warning("event on %s failed (attempt %d), retrying in %.1fs",
                        self.queue.name, attempts + 1, delay)
            eventlet.sleep(delay)
            self.queue_consumer.requeue_message(message)


event_handler = ReliableEventHandler.decorator
