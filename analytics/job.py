"""The PyFlink job: domain events from Kafka -> tumbling-window KPIs -> the KPI topic.

Run it with ``scripts/analytics.sh run`` (a local mini-cluster in this process's JVM); docs/analytics.md
describes the topics, the KPIs, event time and lateness, checkpoints and replay.

Pipeline::

    Kafka source (orders.events, payments.events, analytics.heartbeat)
      event time = the Kafka record timestamp (the sink sets it to the event's occurred_at),
      watermarks per partition: max seen - OUT_OF_ORDERNESS, idle partitions ignored
    -> parse: envelope -> fact; malformed records are counted (metric bad_records), logged, skipped
    -> keyed by order: order_created + order_shipped -> a ship_latency fact, timed at the shipping
    -> tumbling event-time windows (WINDOW seconds) with ALLOWED_LATENESS:
       dedup by event_id, then analytics.kpis.window_kpis; a late event within the allowed
       lateness re-emits the window with revision + 1; later ones are counted and logged
    -> Kafka sink, exactly once (transactions committed on checkpoints)

Settings come from the environment (see ``Settings``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Duration, Types, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.common.time import Time
from pyflink.datastream import (
    CheckpointingMode,
    FlatMapFunction,
    KeyedProcessFunction,
    MapFunction,
    OutputTag,
    ProcessWindowFunction,
    RuntimeContext,
    StreamExecutionEnvironment,
)
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
)
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor
from pyflink.datastream.window import TimeWindow, TumblingEventTimeWindows

# the job is started as a script; its sibling module holds the KPI rules
sys.path.insert(0, str(Path(__file__).resolve().parent))
import kpis

log = logging.getLogger("analytics.job")

def fact_type() -> Any:
    """kpis.Fact's Flink type. A new instance per use: one that has been handed to Java caches a
    JVM reference, and cannot be pickled into a Python function (e.g. in the late-data OutputTag)."""
    return Types.TUPLE([Types.STRING(), Types.STRING(), Types.LONG(), Types.STRING(), Types.STRING(),
                        Types.LONG(), Types.STRING()])


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str
    input_topics: tuple[str, ...]
    kpi_topic: str
    window_seconds: int
    out_of_orderness_seconds: int
    idle_seconds: int
    allowed_lateness_seconds: int
    checkpoint_seconds: int
    state_dir: Path
    rest_port: int
    connector_jar: Path

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            input_topics=tuple(env.get("ANALYTICS_INPUT_TOPICS",
                                       "orders.events,payments.events,analytics.heartbeat").split(",")),
            kpi_topic=env.get("ANALYTICS_KPI_TOPIC", "analytics.kpis"),
            window_seconds=int(env.get("ANALYTICS_WINDOW_SECONDS", "60")),
            out_of_orderness_seconds=int(env.get("ANALYTICS_OUT_OF_ORDERNESS_SECONDS", "5")),
            idle_seconds=int(env.get("ANALYTICS_IDLE_SECONDS", "2")),
            allowed_lateness_seconds=int(env.get("ANALYTICS_ALLOWED_LATENESS_SECONDS", "300")),
            checkpoint_seconds=int(env.get("ANALYTICS_CHECKPOINT_SECONDS", "10")),
            state_dir=Path(env.get("ANALYTICS_STATE_DIR", "var/flink")).resolve(),
            rest_port=int(env.get("ANALYTICS_FLINK_REST_PORT", "8081")),
            connector_jar=Path(env["ANALYTICS_KAFKA_CONNECTOR_JAR"]).resolve(),
        )

    @property
    def checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints"


class ParseEvents(FlatMapFunction):
    """Envelope -> fact. A malformed record is counted, logged and skipped: it never stops the job."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.bad_records = runtime_context.get_metrics_group().counter("bad_records")

    def flat_map(self, value: str) -> Iterable[tuple]:
        try:
            fact = kpis.parse(value)
        except kpis.BadRecord as exc:
            self.bad_records.inc()
            log.warning("skipping malformed record (%s): %.200r", exc, value)
            return
        if fact is not None:
            yield tuple(fact)


class ShipLatencyJoin(KeyedProcessFunction):
    """Per order: when both its creation and its shipping are known, a ship_latency fact.

    Emitted from an event-time timer at the shipping time, so the fact lands in the window
    of the shipping even when order_shipped was read before order_created (they arrive on
    different RabbitMQ queues, so their order in Kafka is not guaranteed). A repeated event
    re-emits the same fact id, which the window counts once.
    """

    def __init__(self, ttl_days: int = 7):
        self.ttl_days = ttl_days

    def open(self, runtime_context: RuntimeContext) -> None:
        # an order that never ships (still pending, lost) is forgotten after a week
        ttl = StateTtlConfig.new_builder(Time.days(self.ttl_days)).build()
        created = ValueStateDescriptor("created_ms", Types.LONG())
        shipped = ValueStateDescriptor("shipped_ms", Types.LONG())
        created.enable_time_to_live(ttl)
        shipped.enable_time_to_live(ttl)
        self.created = runtime_context.get_state(created)
        self.shipped = runtime_context.get_state(shipped)

    def process_element(self, value: tuple, ctx: KeyedProcessFunction.Context) -> Iterable[tuple]:
        kind, ts_ms = value[0], value[2]
        if kind == kpis.ORDER_CREATED:
            self.created.update(ts_ms)
        elif kind == kpis.ORDER_SHIPPED:
            self.shipped.update(ts_ms)
        else:  # cancelled or rejected: it will not ship
            self.created.clear()
            self.shipped.clear()
        shipped_ms = self.shipped.value()
        if self.created.value() is not None and shipped_ms is not None:
            ctx.timer_service().register_event_time_timer(shipped_ms)
        return ()  # facts leave only from the timer

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterable[tuple]:
        created_ms, shipped_ms = self.created.value(), self.shipped.value()
        if created_ms is None or shipped_ms is None:
            return
        yield tuple(kpis.ship_latency(ctx.get_current_key(), created_ms, shipped_ms))
        self.created.clear()
        self.shipped.clear()


class WindowKpis(ProcessWindowFunction):
    """One KPI record per window firing; revision counts the firings of that window."""

    def __init__(self, window_seconds: int):
        self.window_seconds = window_seconds

    def open(self, runtime_context: RuntimeContext) -> None:
        # created here, not in __init__: a descriptor holds JVM references that cannot be pickled
        self.revision = ValueStateDescriptor("revision", Types.INT())

    def process(self, key: int, context: ProcessWindowFunction.Context,
                elements: Iterable[tuple]) -> Iterable[str]:
        window: TimeWindow = context.window()
        revision_state = context.window_state().get_state(self.revision)
        revision = (revision_state.value() or 0) + 1
        revision_state.update(revision)
        record = kpis.window_kpis(window.start, window.end, elements)
        record.update(window_seconds=self.window_seconds, revision=revision,
                      emitted_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        yield json.dumps(record, sort_keys=True)

    def clear(self, context: ProcessWindowFunction.Context) -> None:
        context.window_state().get_state(self.revision).clear()


class CountLate(MapFunction):
    """Events later than the allowed lateness: counted (metric late_events) and logged."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.late_events = runtime_context.get_metrics_group().counter("late_events")

    def map(self, value: tuple) -> str:
        self.late_events.inc()
        log.warning("dropping an event later than the allowed lateness: %s %s at %s",
                    value[0], value[1], kpis.iso_from_ms(value[2]))
        return value[1]


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest completed checkpoint of any earlier run (a chk-N directory with its _metadata)."""
    completed = [meta.parent for meta in checkpoint_dir.glob("*/chk-*/_metadata")]
    return max(completed, key=lambda path: path.stat().st_mtime) if completed else None


def prune_checkpoints(checkpoint_dir: Path, keep: Path | None) -> None:
    """Drop the checkpoint directories of older runs; the one restored from stays until replaced."""
    for job_dir in checkpoint_dir.glob("*"):
        if job_dir.is_dir() and (keep is None or job_dir != keep.parent):
            shutil.rmtree(job_dir, ignore_errors=True)


def build(env: StreamExecutionEnvironment, settings: Settings) -> None:
    source = (
        KafkaSource.builder()
        .set_bootstrap_servers(settings.bootstrap_servers)
        .set_topics(*settings.input_topics)
        .set_group_id("analytics-kpis")
        # a first run (no checkpoint) computes every window still in the topics
        .set_starting_offsets(KafkaOffsetsInitializer.earliest())
        .set_value_only_deserializer(SimpleStringSchema())
        .set_property("partition.discovery.interval.ms", "10000")
        .build()
    )
    watermarks = (
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_seconds(settings.out_of_orderness_seconds))
        .with_idleness(Duration.of_seconds(settings.idle_seconds))
    )
    records = env.from_source(source, watermarks, "domain events").uid("kafka-source")
    facts = records.flat_map(ParseEvents(), output_type=fact_type()).name("parse").uid("parse")
    latencies = (
        facts.filter(lambda f: f[0] in (kpis.ORDER_CREATED, kpis.ORDER_SHIPPED, kpis.ORDER_CANCELLED,
                                        kpis.ORDER_REJECTED))
        .key_by(lambda f: f[3], key_type=Types.STRING())
        .process(ShipLatencyJoin(), output_type=fact_type()).name("ship latency").uid("ship-latency")
    )
    late = OutputTag("late", fact_type())
    windowed = (
        facts.union(latencies)
        # one window for the whole shop: KPIs are global, and the volume fits one slot
        .key_by(lambda f: 0, key_type=Types.INT())
        .window(TumblingEventTimeWindows.of(Time.seconds(settings.window_seconds)))
        .allowed_lateness(settings.allowed_lateness_seconds * 1000)
        .side_output_late_data(late)
        .process(WindowKpis(settings.window_seconds), output_type=Types.STRING())
        .name("window KPIs").uid("window-kpis")
    )
    windowed.get_side_output(late).map(CountLate(), output_type=Types.STRING()).name("late events") \
        .uid("late-events")
    sink = (
        KafkaSink.builder()
        .set_bootstrap_servers(settings.bootstrap_servers)
        .set_record_serializer(KafkaRecordSerializationSchema.builder().set_topic(settings.kpi_topic)
                               .set_value_serialization_schema(SimpleStringSchema()).build())
        .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .set_transactional_id_prefix("analytics-kpis")
        # the broker refuses transactions longer than its transaction.max.timeout.ms (15 min)
        .set_property("transaction.timeout.ms", "600000")
        .build()
    )
    windowed.sink_to(sink).name("KPI topic").uid("kpi-sink")


def environment(settings: Settings, restore_from: Path | None) -> StreamExecutionEnvironment:
    config = Configuration()
    config.set_string("pipeline.jars", settings.connector_jar.as_uri())
    config.set_string("pipeline.name", "ecommerce-kpis")
    # the Python workers must run this interpreter (the analytics venv), not whatever is on PATH
    config.set_string("python.executable", sys.executable)
    config.set_string("python.client.executable", sys.executable)
    config.set_string("rest.port", str(settings.rest_port))
    config.set_string("rest.address", "127.0.0.1")
    config.set_string("rest.bind-address", "127.0.0.1")
    config.set_string("execution.checkpointing.dir", settings.checkpoint_dir.as_uri())
    config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    config.set_string("execution.checkpointing.num-retained", "2")
    if restore_from is not None:
        config.set_string("execution.state-recovery.path", restore_from.as_uri())
    env = StreamExecutionEnvironment.get_execution_environment(config)
    # the Python workers import the KPI rules from the same file the client used
    env.add_python_file(str(Path(__file__).resolve().parent / "kpis.py"))
    env.set_parallelism(1)
    env.enable_checkpointing(settings.checkpoint_seconds * 1000, CheckpointingMode.EXACTLY_ONCE)
    return env


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    settings = Settings.from_env()
    settings.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    restore_from = latest_checkpoint(settings.checkpoint_dir)
    prune_checkpoints(settings.checkpoint_dir, restore_from)
    if restore_from is None:
        log.info("no checkpoint in %s: starting from the earliest offsets", settings.checkpoint_dir)
    else:
        log.info("restoring from checkpoint %s", restore_from)
    env = environment(settings, restore_from)
    build(env, settings)
    log.info("running the KPI job (window %ss, out-of-orderness %ss, allowed lateness %ss, "
             "checkpoints every %ss, REST http://127.0.0.1:%s)", settings.window_seconds,
             settings.out_of_orderness_seconds, settings.allowed_lateness_seconds,
             settings.checkpoint_seconds, settings.rest_port)
    env.execute("ecommerce-kpis")


if __name__ == "__main__":
    main()
