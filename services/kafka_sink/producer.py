"""The sink's Kafka producer: acks=all, idempotent, and a send that returns only once Kafka has the record.

kafka-python (3.x) supports the idempotent producer (``enable_idempotence``): with it a retried
send after a lost acknowledgement is not written twice. A record is written to
``<source>.events``, keyed by its aggregate id (the order id for order events) so one order's
events share a partition and keep their order, timestamped with the event's ``occurred_at``
(the event time the analytics job windows by), and with the event id and type as headers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import eventlet
from eventlet.semaphore import Semaphore
from kafka import KafkaProducer
from kafka.errors import KafkaError
from nameko.extensions import DependencyProvider

from services.kafka_sink.routes import event_sources
from services.kafka_sink.topics import HEARTBEAT, all_topics, bootstrap_servers, ensure_topics, events_topic

log = logging.getLogger(__name__)

#: how long one attempt waits for Kafka's acknowledgement before it is tried again
SEND_TIMEOUT = 10.0
MAX_BACKOFF = 5.0
#: heartbeats pause while the sink is behind, and this long after it last failed (see ``heartbeat``)
HEARTBEAT_QUIET_AFTER_FAILURE = 5.0


def record_for(envelope: dict[str, Any]) -> dict[str, Any]:
    """Topic, key, value, timestamp and headers of one domain event's Kafka record."""
    moment = datetime.fromisoformat(envelope["occurred_at"])
    if moment.tzinfo is None:  # the envelope promises UTC; never let a naive time shift event time
        moment = moment.replace(tzinfo=UTC)
    key = envelope.get("aggregate_id") or envelope["event_id"]
    return {
        "topic": events_topic(envelope["source"]),
        "key": key.encode(),
        "value": json.dumps(envelope, separators=(",", ":")).encode(),
        "timestamp_ms": int(moment.timestamp() * 1000),
        "headers": [("event_id", envelope["event_id"].encode()), ("type", envelope["type"].encode())],
    }


class KafkaPublisher:
    """One producer per sink process, shared by its workers (kafka-python's producer is thread-safe)."""

    def __init__(self, servers: str):
        self.servers = servers
        self._producer: KafkaProducer | None = None
        # workers that find no producer build one, not one each
        self._building = Semaphore(1)
        #: workers currently waiting for Kafka, and when a send last failed
        self.retrying = 0
        self.last_failure = float("-inf")

    def _client(self) -> KafkaProducer:
        with self._building:
            if self._producer is None:
                self._producer = self._new_producer()
            return self._producer

    def _new_producer(self) -> KafkaProducer:
        return KafkaProducer(
            bootstrap_servers=self.servers,
            client_id="kafka-sink",
            acks="all",
            enable_idempotence=True,
            # a short wait lets concurrent workers' records share a request
            linger_ms=2,
            # fail an attempt fast when Kafka is down; publish() retries it
            max_block_ms=5000,
            request_timeout_ms=5000,
            delivery_timeout_ms=int(SEND_TIMEOUT * 1000),
            bootstrap_timeout_ms=5000,
            # kafka-python's own client metrics cost CPU on every record and nothing reads them:
            # the broker's JMX exporter and the sink's /metrics are what Prometheus scrapes
            metrics_enabled=False,
        )

    def publish_batch(self, envelopes: Sequence[dict[str, Any]]) -> list[int]:
        """Return once Kafka acknowledged every record it accepts; the indices of those it refused.

        While Kafka is unreachable the unacknowledged records are sent again, on a new producer,
        until it takes them: the RabbitMQ messages stay unacknowledged meanwhile, so events wait in
        RabbitMQ without using up their delivery limit. A record Kafka refuses for good (too large,
        say) is returned: the batch handler requeues its message, and after the delivery limit
        RabbitMQ parks it in the dead-letter queue.
        """
        records: dict[int, dict[str, Any]] = {}  # index in envelopes -> its record
        refused: list[int] = []
        for index, envelope in enumerate(envelopes):
            try:
                records[index] = record_for(envelope)
            except ValueError as exc:  # an occurred_at that is no ISO time: no retry will mend it
                log.error("cannot write %s %s to Kafka: %s", envelope["type"], envelope["event_id"], exc)
                refused.append(index)
        waiting = list(records)
        backoff = 0.1
        counted = False
        try:
            while True:
                retry, failure, producer = self._send(records, waiting, refused)
                if not retry:
                    return sorted(refused)
                if producer is not None:
                    self._discard(producer)
                self.last_failure = time.monotonic()
                if not counted:
                    self.retrying += 1
                    counted = True
                log.warning("Kafka unavailable for %d of %d events (%s: %s); retrying in %.1fs",
                            len(retry), len(envelopes), type(failure).__name__, failure, backoff)
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                waiting = retry
        finally:
            if counted:
                self.retrying -= 1

    def _send(self, records: dict[int, dict[str, Any]], indices: list[int],
              refused: list[int]) -> tuple[list[int], KafkaError | None, KafkaProducer | None]:
        """Send ``records[i]`` for each index and wait for Kafka's answers; what to retry, why, and on
        which producer. Refused indices are appended to ``refused``."""
        try:
            producer = self._client()  # raises too when Kafka is down: it bootstraps at once
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return indices, exc, None
        sent = []
        retry: list[int] = []
        failure: KafkaError | None = None
        for position, index in enumerate(indices):
            try:
                sent.append((index, producer.send(**records[index])))
            except KafkaError as exc:  # no metadata (Kafka down): the rest would fail the same way
                if exc.retriable:
                    retry.extend(indices[position:])
                    failure = exc
                    break
                self._refuse(records[index], exc)
                refused.append(index)
        for index, future in sent:
            try:
                future.get(timeout=SEND_TIMEOUT)
            except KafkaError as exc:
                # a stopped broker gives KafkaTimeoutError (no metadata, delivery timeout): retriable
                if exc.retriable:
                    retry.append(index)
                    failure = exc
                else:
                    self._refuse(records[index], exc)
                    refused.append(index)
        return sorted(retry), failure, producer

    @staticmethod
    def _refuse(record: dict[str, Any], exc: KafkaError) -> None:
        headers = dict(record["headers"])
        log.error("Kafka refused %s %s (%s: %s)", headers["type"].decode(), headers["event_id"].decode(),
                  type(exc).__name__, exc)

    def _discard(self, producer: KafkaProducer) -> None:
        """Drop a producer that failed; the next attempt builds a new one.

        kafka-python 3.0.12 does not always reconnect by itself: after the broker was stopped and
        started again, a producer was seen logging "No node available for metadata refresh" for
        minutes while the broker was up. A new producer connects at once. Its records get a new
        producer id, so a record whose acknowledgement was lost can be written twice; the
        analytics job counts each event_id once.
        """
        if self._producer is producer:  # the workers that failed with it share one replacement
            self._producer = None
            producer.close(timeout=0)

    def heartbeat(self) -> bool:
        """Mark the passage of time for the analytics job's watermark; False when skipped.

        Skipped while any worker waits for Kafka and shortly after: a heartbeat stamped now,
        read before the backlog it overtook, would make those events late.
        """
        if self.retrying or time.monotonic() - self.last_failure < HEARTBEAT_QUIET_AFTER_FAILURE:
            return False
        now = datetime.now(UTC)
        value = json.dumps({"type": "heartbeat", "source": "kafka_sink", "at": now.isoformat()})
        producer = None
        try:
            producer = self._client()
            producer.send(HEARTBEAT.name, value=value.encode(), timestamp_ms=int(now.timestamp() * 1000))
        except KafkaError as exc:
            log.warning("heartbeat not sent (%s: %s)", type(exc).__name__, exc)
            if producer is not None:
                self._discard(producer)
            self.last_failure = time.monotonic()
            return False
        return True

    def stop(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


class Kafka(DependencyProvider):
    """Gives workers the process's KafkaPublisher; creates the topics in the background at start."""

    def setup(self) -> None:
        self.publisher = KafkaPublisher(bootstrap_servers())
        self._topics_thread: Any = None

    def start(self) -> None:
        # in the background: the sink must consume (and wait on Kafka) even while Kafka is still starting
        self._topics_thread = self.container.spawn_managed_thread(self._ensure_topics)

    def _ensure_topics(self) -> None:
        backoff = 1.0
        while True:
            try:
                created = ensure_topics(all_topics(event_sources()), self.publisher.servers, timeout=5)
                if created:
                    log.info("created Kafka topics: %s", ", ".join(created))
                return
            except KafkaError as exc:
                log.warning("cannot create the Kafka topics yet (%s); retrying in %.0fs", exc, backoff)
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 30)

    def stop(self) -> None:
        self.publisher.stop()

    def kill(self) -> None:
        self.publisher.stop()

    def get_dependency(self, worker_ctx: Any) -> KafkaPublisher:
        return self.publisher
