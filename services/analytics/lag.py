"""The Flink job's consumer lag, as ``kafka_consumergroup_lag``, read from Kafka at each scrape.

The job's Kafka source commits its offsets to the group ``analytics-kpis`` when a checkpoint
completes, so the lag is what the job has not yet checkpointed: the end offset of each input
partition minus the group's committed offset. The metric has kafka-exporter's name and labels,
so the KafkaConsumerLag alert and the messaging dashboard read it the same way wherever it
comes from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

#: the consumer group analytics/job.py's Kafka source commits to
JOB_GROUP = "analytics-kpis"
#: a scrape must not hang on a Kafka that is down
TIMEOUT_MS = 2000


class ConsumerLag:
    """A Telemetry collector: one gauge per partition the group has committed an offset for."""

    def __init__(self, servers: str, group: str = JOB_GROUP):
        self.servers = servers
        self.group = group
        self._admin: KafkaAdminClient | None = None

    def __call__(self, session: Any = None) -> Iterator[GaugeMetricFamily]:
        try:
            if self._admin is None:
                self._admin = KafkaAdminClient(bootstrap_servers=self.servers, client_id="analytics-lag",
                                               request_timeout_ms=TIMEOUT_MS)
            committed = self._admin.list_group_offsets({self.group: None}).get(self.group, {})
            ends = self._admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in committed})
        except KafkaError as exc:  # Kafka down: no figure rather than a wrong one
            log.warning("consumer lag unavailable (%s: %s)", type(exc).__name__, exc)
            self.close()
            return
        gauge = GaugeMetricFamily("kafka_consumergroup_lag",
                                  "Records in a partition the consumer group has not committed",
                                  labels=["consumergroup", "topic", "partition"])
        for partition, offset in sorted(committed.items()):
            if offset.offset >= 0:  # -1: nothing committed for it yet
                gauge.add_metric([self.group, partition.topic, str(partition.partition)],
                                 max(ends[partition].offset - offset.offset, 0))
        yield gauge

    def close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # already broken: nothing left to release
                log.debug("closing the Kafka admin client failed", exc_info=True)
            self._admin = None
