"""The Kafka topic layout, and creating it: the one place topic names, partitions and retention live.

docs/analytics.md documents the same table for readers; ``python -m services.kafka_sink.topics``
creates every topic that is missing (the sink and the analytics runner call it at start).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_ms: int

    def new_topic(self) -> NewTopic:
        return NewTopic(self.name, self.partitions, 1, topic_configs={
            "retention.ms": str(self.retention_ms),
            # event time is the producer's timestamp (the event's occurred_at), not the append time
            "message.timestamp.type": "CreateTime",
        })


#: how many partitions each source's event topic gets; order-keyed sources get room to scale out
EVENT_PARTITIONS = {"orders": 3, "payments": 3, "shipping": 3, "inventory": 3}
EVENT_RETENTION_MS = 7 * DAY_MS


def events_topic(source: str) -> str:
    """Kafka topic for a service's events: named like its RabbitMQ exchange."""
    return f"{source}.events"


HEARTBEAT = Topic("analytics.heartbeat", 1, 1 * DAY_MS)
KPIS = Topic("analytics.kpis", 1, 30 * DAY_MS)


def bootstrap_servers() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def all_topics(sources: list[str]) -> list[Topic]:
    return [Topic(events_topic(source), EVENT_PARTITIONS.get(source, 1), EVENT_RETENTION_MS)
            for source in sources] + [HEARTBEAT, KPIS]


def ensure_topics(topics: list[Topic], servers: str, timeout: float = 60) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Waits for the broker."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=servers, client_id="topic-setup",
                                     request_timeout_ms=10000)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise
            log.info("waiting for Kafka at %s (%s)", servers, exc)
            time.sleep(1)
    try:
        existing = set(admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        created = []
        for topic in missing:
            try:
                admin.create_topics([topic.new_topic()])
                created.append(topic.name)
            except TopicAlreadyExistsError:  # created concurrently by the other starter
                pass
        return created
    finally:
        admin.close()


def main() -> int:
    from services.kafka_sink.routes import event_sources

    logging.basicConfig(level=logging.INFO, format="[topics] %(message)s")
    created = ensure_topics(all_topics(event_sources()), bootstrap_servers())
    print(f"[topics] created: {', '.join(created) or 'none (all exist)'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
