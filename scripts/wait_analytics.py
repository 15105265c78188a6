"""Wait until the analytics part of a stack works, or fail naming what does not.

Ready means: Kafka answers, the sink consumes every event queue it should, the analytics service
consumes its RPC queue, and the Flink job is RUNNING (its REST API on ANALYTICS_FLINK_REST_PORT).
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import quote, urlparse

from services.common.warnings_filter import silence_eventlet_banner

silence_eventlet_banner()  # before nameko imports eventlet (services/common/warnings_filter.py)

import requests  # noqa: E402
from kafka import KafkaAdminClient  # noqa: E402
from kafka.errors import KafkaError  # noqa: E402

from services.common.batch_events import queue_name  # noqa: E402
from services.common.config import load_config  # noqa: E402
from services.kafka_sink.routes import event_routes  # noqa: E402
from services.kafka_sink.service import KafkaSinkService  # noqa: E402
from services.kafka_sink.topics import bootstrap_servers  # noqa: E402

TIMEOUT = float(os.environ.get("ANALYTICS_READY_TIMEOUT", "180"))


def kafka_ok() -> bool:
    try:
        KafkaAdminClient(bootstrap_servers=bootstrap_servers(), request_timeout_ms=3000).close()
        return True
    except KafkaError:
        return False


def queue_consumers() -> dict[str, int]:
    amqp = urlparse(load_config()["AMQP_URI"])
    vhost = quote(amqp.path.lstrip("/") or "/", safe="")
    response = requests.get(f"http://localhost:15672/api/queues/{vhost}?columns=name,consumers",
                            auth=(amqp.username or "guest", amqp.password or "guest"), timeout=5)
    response.raise_for_status()
    return {queue["name"]: queue.get("consumers", 0) for queue in response.json()}


def flink_state() -> str:
    port = os.environ.get("ANALYTICS_FLINK_REST_PORT", "8081")
    try:
        jobs = requests.get(f"http://127.0.0.1:{port}/jobs/overview", timeout=3).json()["jobs"]
    except (requests.RequestException, ValueError, KeyError):
        return "not answering"
    running = [job for job in jobs if job["state"] == "RUNNING"]
    return "RUNNING" if running else ",".join(job["state"] for job in jobs) or "no job"


def problems() -> list[str]:
    found = []
    if not kafka_ok():
        found.append(f"Kafka at {bootstrap_servers()} does not answer")
    try:
        consumers = queue_consumers()
    except requests.RequestException as exc:
        return [*found, f"RabbitMQ's management API does not answer ({exc})"]
    sink_queues = [queue_name(source, event_type, KafkaSinkService.name)
                   for source, event_type in event_routes()]
    idle = [name for name in sink_queues if consumers.get(name, 0) < 1]
    if idle:
        found.append(f"kafka_sink does not consume {len(idle)} of its {len(sink_queues)} queues")
    if consumers.get("rpc-analytics", 0) < 1:
        found.append("the analytics service does not consume rpc-analytics")
    if (state := flink_state()) != "RUNNING":
        found.append(f"the Flink job is {state}")
    return found


def main() -> int:
    deadline = time.monotonic() + TIMEOUT
    while (found := problems()) and time.monotonic() < deadline:
        time.sleep(1)
    if found:
        print(f"[analytics] not ready after {TIMEOUT:.0f}s: {'; '.join(found)}; see "
              "$STACK_DIR/log/{kafka,kafka_sink,analytics,flink_kpis}.log", file=sys.stderr)
        return 1
    print("[analytics] Kafka, sink, KPI reader and Flink job ready", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
