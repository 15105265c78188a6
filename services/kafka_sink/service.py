"""kafka_sink: every domain event of every service, from RabbitMQ into Kafka.

One reliable event handler (quorum queue, dead-lettering) per (source, event type) that the
services declare in their EVENT_SCHEMAS (``routes.event_routes``), so a newly declared event is
forwarded without touching this file. A handler returns only after Kafka acknowledged the record
(acks=all), and the RabbitMQ message is acked only then: when Kafka is down the events wait in
RabbitMQ. Redelivery can write an event twice; the analytics job counts each event_id once.
"""

from __future__ import annotations

import logging
from typing import Any

from nameko.timer import timer

from services.common.messaging import event_handler
from services.common.telemetry import Telemetry
from services.kafka_sink.producer import Kafka, KafkaPublisher
from services.kafka_sink.routes import event_routes

#: seconds between heartbeats on analytics.heartbeat (they advance event time in a quiet shop)
HEARTBEAT_INTERVAL = 1.0


class KafkaSinkService:
    name = "kafka_sink"

    kafka = Kafka()
    # a line per forwarded event would cost more than forwarding it: calls log at DEBUG, errors as ever
    telemetry = Telemetry(call_log_level=logging.DEBUG)

    def forward(self, event: dict[str, Any]) -> None:
        publisher: KafkaPublisher = self.kafka
        publisher.publish(event)

    @timer(interval=HEARTBEAT_INTERVAL)
    def heartbeat(self) -> None:
        self.kafka.heartbeat()


def _handler(source: str, event_type: str) -> Any:
    def handle(self: KafkaSinkService, event: dict[str, Any]) -> None:
        self.forward(event)

    handle.__name__ = f"on_{source}_{event_type}"
    return event_handler(source, event_type)(handle)


# nameko finds entrypoints on the class: one method per route, named after it (the queue is
# evt-<source>-<event_type>--kafka_sink.on_<source>_<event_type>)
for _source, _event_type in event_routes():
    _method = _handler(_source, _event_type)
    setattr(KafkaSinkService, _method.__name__, _method)
