"""The consumer-lag gauge the analytics service reports for the Flink job's group (Kafka faked)."""

from __future__ import annotations

from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, OffsetAndTimestamp

from services.analytics.lag import JOB_GROUP, ConsumerLag


class FakeAdmin:
    def __init__(self, committed: dict[TopicPartition, int], ends: dict[TopicPartition, int]):
        self.committed, self.ends, self.closed = committed, ends, False

    def list_group_offsets(self, specs: dict[str, Any]) -> dict[str, dict]:
        return {group: {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self.committed.items()}
                for group in specs}

    def list_partition_offsets(self, specs: dict[TopicPartition, Any]) -> dict:
        return {tp: OffsetAndTimestamp(self.ends[tp], -1, -1) for tp in specs}

    def close(self) -> None:
        self.closed = True


def samples(lag: ConsumerLag) -> dict[tuple[str, str, str], float]:
    return {(s.labels["consumergroup"], s.labels["topic"], s.labels["partition"]): s.value
            for family in lag() for s in family.samples}


def test_lag_is_end_offset_minus_committed_per_partition() -> None:
    orders0, orders1, payments0 = (TopicPartition("orders.events", 0), TopicPartition("orders.events", 1),
                                   TopicPartition("payments.events", 0))
    lag = ConsumerLag("unused:9092")
    lag._admin = FakeAdmin({orders0: 10, orders1: -1, payments0: 7}, {orders0: 25, orders1: 3, payments0: 7})
    assert samples(lag) == {(JOB_GROUP, "orders.events", "0"): 15, (JOB_GROUP, "payments.events", "0"): 0}


def test_kafka_down_gives_no_figure_and_a_fresh_client_next_time() -> None:
    class DownAdmin(FakeAdmin):
        def list_group_offsets(self, specs: dict[str, Any]) -> dict[str, dict]:
            raise KafkaTimeoutError("Unable to bootstrap")

    lag = ConsumerLag("unused:9092")
    admin = lag._admin = DownAdmin({}, {})
    assert samples(lag) == {}
    assert admin.closed and lag._admin is None
