"""kafka_sink: every domain event of every service, from RabbitMQ into Kafka.

One batch handler (services.common.batch_events) consumes the queues of every (source, event type)
that the services declare in their EVENT_SCHEMAS (``routes.event_routes``), so a newly declared
event is forwarded without touching this file. The queues are the reliable ones every handler has
(quorum, delivery limit, dead-lettering). A batch's messages are acked only after Kafka
acknowledged their records (acks=all): when Kafka is down the events wait in RabbitMQ.
Redelivery can write an event twice; the analytics job counts each event_id once.

Why batches: with a nameko worker and an ack per event, the sink's CPU per event (and RabbitMQ's)
capped its throughput below the 2,000 events/s target on a 2-core machine (docs/analytics.md).
"""

from __future__ import annotations

import logging
from typing import Any

from nameko.timer import timer

from services.common.batch_events import batch_event_handler
from services.common.telemetry import Telemetry
from services.kafka_sink.producer import Kafka, KafkaPublisher
from services.kafka_sink.routes import event_routes

#: seconds between heartbeats on analytics.heartbeat (they advance event time in a quiet shop)
HEARTBEAT_INTERVAL = 1.0


class KafkaSinkService:
    name = "kafka_sink"

    kafka = Kafka()
    # a line per batch is routine: calls log at DEBUG, errors as ever
    telemetry = Telemetry(call_log_level=logging.DEBUG)

    @batch_event_handler(event_routes())
    def forward(self, events: list[dict[str, Any]]) -> list[int]:
        """Write the events to Kafka; the indices of those Kafka refused (they are retried)."""
        publisher: KafkaPublisher = self.kafka
        return publisher.publish_batch(events)

    @timer(interval=HEARTBEAT_INTERVAL)
    def heartbeat(self) -> None:
        self.kafka.heartbeat()
