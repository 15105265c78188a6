"""With analytics running (``ANALYTICS=on``): did every event the run published reach Kafka?

Per source service, the messages published into its RabbitMQ event exchange (``<service>.events``:
``publish_in`` of the management API) against the records appended to its Kafka topic (end
offsets), both counted from before the run's first order. The sink writes at least once, so Kafka
may hold more than was published (a redelivery) but never fewer: a shortfall that does not close
within the wait is events lost.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote

import requests
from kafka import KafkaConsumer, TopicPartition

from bench.stack import Stack, process_environ
from services.kafka_sink.routes import event_sources
from services.kafka_sink.topics import events_topic

MANAGEMENT = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://localhost:15672")


def running(processes: dict[str, int]) -> bool:
    return any(name.startswith("kafka_sink") for name in processes)


def end_offsets(topic: str, servers: str) -> int:
    """Records appended to ``topic`` so far, over all its partitions."""
    consumer = KafkaConsumer(bootstrap_servers=servers)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def published(vhost: str, exchange: str) -> int:
    response = requests.get(
        f"{MANAGEMENT}/api/exchanges/{quote(vhost or '/', safe='')}/{quote(exchange, safe='')}",
        auth=("guest", "guest"),
        timeout=10,
    )
    if response.status_code == 404:
        return 0  # not declared yet: nothing published into it
    response.raise_for_status()
    return int((response.json().get("message_stats") or {}).get("publish_in", 0))


def _servers(stack: Stack) -> str:
    for name, pid in stack.platform_processes().items():
        if name.startswith("kafka_sink"):
            servers = process_environ(pid).get("KAFKA_BOOTSTRAP_SERVERS")
            if servers:
                return servers
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def snapshot(stack: Stack) -> dict[str, dict[str, int]]:
    vhost = stack.amqp_uri.rsplit("/", 1)[-1]
    servers = _servers(stack)
    return {
        source: {
            "published": published(vhost, f"{source}.events"),
            "in_kafka": end_offsets(events_topic(source), servers),
        }
        for source in event_sources()
    }


def difference(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Per source: published and written to Kafka since ``before``; missing = published - written
    where that is positive."""
    sources = {}
    for source, now in after.items():
        then = before.get(source, {"published": 0, "in_kafka": 0})
        sent, written = now["published"] - then["published"], now["in_kafka"] - then["in_kafka"]
        sources[source] = {"published": sent, "in_kafka": written, "missing": max(sent - written, 0)}
    return {
        "sources": sources,
        "published": sum(s["published"] for s in sources.values()),
        "in_kafka": sum(s["in_kafka"] for s in sources.values()),
        "missing": sum(s["missing"] for s in sources.values()),
    }


def compare(stack: Stack, before: dict[str, dict[str, int]], timeout: float = 120) -> dict[str, Any]:
    """The difference once Kafka caught up with every source, or after ``timeout`` seconds."""
    started = time.monotonic()
    while True:
        result = difference(before, snapshot(stack))
        if not result["missing"] or time.monotonic() - started > timeout:
            result["waited_s"] = round(time.monotonic() - started, 1)
            return result
        time.sleep(2)
