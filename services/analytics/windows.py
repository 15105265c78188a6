"""The latest KPI windows, read from the KPI topic into memory by a background consumer.

The topic is read from its start with ``isolation_level=read_committed``: the Flink job writes
its records in transactions committed on checkpoints, so only records of completed checkpoints
are seen, and nothing a crashed attempt wrote. A window can appear more than once (a late event
within the allowed lateness re-emits it, and a replay from the start re-emits everything); the
record read last for a window wins, which is the newest, as the topic has one partition.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import eventlet
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from nameko.extensions import DependencyProvider

from services.kafka_sink.topics import KPIS, bootstrap_servers

log = logging.getLogger(__name__)

#: windows kept in memory: a day of one-minute windows
MAX_WINDOWS = 1440
MAX_BACKOFF = 10.0
#: seconds between checks that the consumer still makes progress (see KpiWindows.consume)
HEALTH_CHECK = 15.0


class KpiWindows:
    def __init__(self, max_windows: int = MAX_WINDOWS):
        self.max_windows = max_windows
        self._windows: dict[str, dict[str, Any]] = {}
        self.reachable = False
        self.last_read_at: str | None = None
        #: the offset to read next, kept across reconnections
        self.position = 0

    def add(self, record: dict[str, Any]) -> None:
        self._windows[record["window_start"]] = record
        if len(self._windows) > self.max_windows:
            for start in sorted(self._windows)[: len(self._windows) - self.max_windows]:
                del self._windows[start]

    def latest(self, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` newest windows, newest first."""
        return [self._windows[start] for start in sorted(self._windows, reverse=True)[:limit]]

    def consume(self, consumer: KafkaConsumer, partition: TopicPartition) -> None:
        """Read the topic from ``position`` on, for as long as the consumer works.

        Returns when the consumer stalls: kafka-python 3.0.12 was seen not reconnecting after a
        broker restart, so every HEALTH_CHECK seconds the topic's end offset is asked for (that
        raises when Kafka is unreachable), and a consumer that is behind it without progress since
        the last check is given up for a new one.
        """
        consumer.assign([partition])
        consumer.seek(partition, self.position)
        checked_at, checked_position = time.monotonic(), self.position
        while True:
            batches = consumer.poll(timeout_ms=1000)
            if time.monotonic() - checked_at > HEALTH_CHECK:
                end = consumer.end_offsets([partition])[partition]
                if end > self.position == checked_position:
                    log.warning("the KPI reader is stuck at offset %d of %d; reconnecting",
                                self.position, end)
                    return
                checked_at, checked_position = time.monotonic(), self.position
            self.reachable = True
            for message in batches.get(partition, []):
                self.position = message.offset + 1
                try:
                    record = json.loads(message.value)
                except ValueError:
                    record = None
                if not isinstance(record, dict) or not isinstance(record.get("window_start"), str):
                    log.warning("skipping a malformed KPI record at offset %d", message.offset)
                    continue
                self.add(record)
                self.last_read_at = datetime.now(UTC).isoformat()


class Windows(DependencyProvider):
    """Keeps a KpiWindows filled from the KPI topic in a background green thread."""

    def setup(self) -> None:
        self.windows = KpiWindows()
        self.servers = bootstrap_servers()

    def start(self) -> None:
        self.container.spawn_managed_thread(self._run)

    def _run(self) -> None:
        backoff = 0.5
        partition = TopicPartition(KPIS.name, 0)
        while True:
            consumer = None
            try:
                consumer = KafkaConsumer(bootstrap_servers=self.servers, client_id="analytics-kpis-reader",
                                         group_id=None, enable_auto_commit=False,
                                         isolation_level="read_committed", request_timeout_ms=10000)
                backoff = 0.5
                self.windows.consume(consumer, partition)
            except KafkaError as exc:
                self.windows.reachable = False
                log.warning("cannot read %s (%s: %s); retrying in %.1fs", KPIS.name, type(exc).__name__,
                            exc, backoff)
            finally:
                if consumer is not None:
                    consumer.close()
            eventlet.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def get_dependency(self, worker_ctx: Any) -> KpiWindows:
        return self.windows
