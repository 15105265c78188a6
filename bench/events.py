"""With analytics running (``ANALYTICS=on``): did every event the run emitted reach Kafka?

Before the run's first order, the newest outbox row of every service and the end offset of every
partition of its Kafka topic are noted. At the audit, the event ids of the outbox rows written since
(what the services emitted, ``services/common/outbox.py``) are looked up among the records the topics
gained since (what the sink wrote), by event id, until every one is there or the wait ends. The sink
writes at least once, so a record may be there twice; an event id that never turns up is lost.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import create_engine, text

from bench.stack import Stack, process_environ
from services.kafka_sink.routes import event_sources
from services.kafka_sink.topics import events_topic

Offsets = dict[str, dict[int, int]]  # topic -> partition -> offset


def running(processes: dict[str, int]) -> bool:
    return any(name.startswith("kafka_sink") for name in processes)


def end_offsets(topic: str, servers: str) -> int:
    """Records appended to ``topic`` so far, over all its partitions."""
    return sum(_partition_ends(topic, servers).values())


def _partition_ends(topic: str, servers: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=servers)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def _servers(stack: Stack) -> str:
    for name, pid in stack.platform_processes().items():
        if name.startswith("kafka_sink"):
            servers = process_environ(pid).get("KAFKA_BOOTSTRAP_SERVERS")
            if servers:
                return servers
    raise RuntimeError("the Kafka sink's KAFKA_BOOTSTRAP_SERVERS was not found in its environment")


def _outbox(stack: Stack, source: str, sql: str, **params: Any) -> list[tuple]:
    url = stack.database_urls(stack.platform_processes()).get(f"{source.upper()}_DATABASE_URL")
    if not url:
        raise RuntimeError(f"{source}'s database URL was not found in its environment")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params))
    finally:
        engine.dispose()


def snapshot(stack: Stack) -> dict[str, Any]:
    servers = _servers(stack)
    return {
        "outbox_max_id": {
            s: _outbox(stack, s, "SELECT max(id) FROM outbox")[0][0] or 0 for s in event_sources()
        },
        "offsets": {events_topic(s): _partition_ends(events_topic(s), servers) for s in event_sources()},
    }


def _kafka_event_ids(servers: str, offsets: Offsets) -> set[str]:
    """Event ids of the records the topics gained since ``offsets``."""
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, group_id=None)
    ids: set[str] = set()
    try:
        partitions = [
            TopicPartition(t, p) for t in offsets for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, offsets[tp.topic].get(tp.partition, 0))
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        ids.add(json.loads(record.value)["event_id"])
                    except (ValueError, KeyError, TypeError):
                        continue  # not an envelope: nothing the outbox emitted
    finally:
        consumer.close()
    return ids


def missing(emitted: dict[str, set[str]], in_kafka: set[str]) -> dict[str, Any]:
    """Per source: events emitted, and those of them not found in Kafka."""
    sources = {
        source: {"emitted": len(ids), "missing": len(ids - in_kafka)} for source, ids in emitted.items()
    }
    return {
        "sources": sources,
        "emitted": sum(s["emitted"] for s in sources.values()),
        "missing": sum(s["missing"] for s in sources.values()),
        "missing_ids": sorted(set().union(*emitted.values()) - in_kafka)[:20] if emitted else [],
    }


def compare(stack: Stack, before: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Events emitted since ``before`` against Kafka, once every one is there or after ``timeout`` s."""
    servers = _servers(stack)
    started = time.monotonic()
    while True:
        emitted = {
            source: {
                row[0]
                for row in _outbox(stack, source, "SELECT event_id FROM outbox WHERE id > :id", id=since)
            }
            for source, since in before["outbox_max_id"].items()
        }
        result = missing(emitted, _kafka_event_ids(servers, before["offsets"]))
        if not result["missing"] or time.monotonic() - started > timeout:
            result["waited_s"] = round(time.monotonic() - started, 1)
            return result
        time.sleep(3)
