"""The raw AMQP floor's responder: consume a queue, answer to ``reply_to`` (pika, no framework).

``python -m bench.amqp_echo AMQP_URL QUEUE``: declares QUEUE (auto-deleted when
the benchmark's client goes), acks every request after replying, as nameko does.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pika


def serve(url: str, queue: str) -> None:
    connection = None
    for _attempt in range(45):  # the broker is shared: wait while someone else restarts it
        try:
            connection = pika.BlockingConnection(pika.URLParameters(url))
            break
        except pika.exceptions.AMQPConnectionError:
            time.sleep(2)
    if connection is None:
        raise SystemExit(f"cannot connect to {url}")
    channel = connection.channel()
    channel.queue_declare(queue, auto_delete=True)
    channel.basic_qos(prefetch_count=10)

    def answer(ch: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        ch.basic_publish(
            "",
            properties.reply_to,
            body,
            pika.BasicProperties(correlation_id=properties.correlation_id, delivery_mode=1),
        )
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, answer)
    print("ready", flush=True)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        pass
    finally:
        if connection.is_open:
            connection.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
