"""Inspect and replay parked (dead-lettered) messages.

    python -m services.common.dlq list                 one line per parked message
    python -m services.common.dlq show EVENT_ID         headers and body of one
    python -m services.common.dlq replay EVENT_ID|--all send back to the queue it died in

Replay publishes with confirms to the original queue and only then removes the
message from the dead-letter queue, so a crash mid-replay duplicates at worst
(consumers deduplicate by event_id) and never loses a message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu import Connection, Exchange, Producer

from services.common.warnings_filter import silence_eventlet_banner

silence_eventlet_banner()  # before nameko imports eventlet (services/common/warnings_filter.py)

from services.common.config import load_config  # noqa: E402
from services.common.messaging import ORIGIN_HEADER, dead_letter_topology  # noqa: E402


def describe(message: Any) -> dict[str, Any]:
    headers = message.headers or {}
    deaths = headers.get("x-death") or [{}]
    body = message.payload if isinstance(message.payload, dict) else {}
    return {
        "event_id": body.get("event_id") or message.properties.get("message_id") or "?",
        "type": body.get("type", "?"),
        "queue": headers.get(ORIGIN_HEADER, "?"),
        "reason": headers.get("x-first-death-reason", "?"),
        "deaths": sum(int(death.get("count", 1)) for death in deaths),
        "last_death": str(deaths[0].get("time", "")),
    }


@contextmanager
def parked_messages(amqp_uri: str) -> Iterator[tuple[Connection, list[Any]]]:
    """Every parked message, held unacknowledged; whatever is not acked goes back."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        _exchange, queue = dead_letter_topology()
        bound = queue(channel)
        bound.declare()
        messages = []
        while (message := bound.get(no_ack=False, accept=["json"])) is not None:
            messages.append(message)
        try:
            yield connection, messages
        finally:
            for message in messages:
                if not message.acknowledged:
                    message.requeue()


def replay(amqp_uri: str, event_id: str | None) -> int:
    """Send parked messages (all, or one by event id) back; returns how many."""
    replayed = 0
    with parked_messages(amqp_uri) as (connection, messages):
        producer = Producer(connection.channel(), exchange=Exchange(""))
        for message in messages:
            info = describe(message)
            if event_id is not None and info["event_id"] != event_id:
                continue
            headers = {k: v for k, v in (message.headers or {}).items() if k != "x-delivery-count"}
            producer.publish(
                message.body,
                routing_key=info["queue"],
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2,
            )
            message.ack()
            replayed += 1
    return replayed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list parked messages")
    show = commands.add_parser("show", help="show one parked message")
    show.add_argument("event_id")
    again = commands.add_parser("replay", help="send parked messages back to their queue")
    target = again.add_mutually_exclusive_group(required=True)
    target.add_argument("event_id", nargs="?")
    target.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    amqp_uri = load_config()["AMQP_URI"]

    if args.command == "replay":
        count = replay(amqp_uri, None if args.all else args.event_id)
        print(f"replayed {count} message(s)")
        return 0 if count or args.all else 1
    with parked_messages(amqp_uri) as (_connection, messages):
        if args.command == "list":
            print(f"{len(messages)} parked message(s)")
            for message in messages:
                info = describe(message)
                print(f"{info['event_id']}  {info['type']:<28} {info['queue']}  "
                      f"reason={info['reason']} deaths={info['deaths']}")
            return 0
        for message in messages:
            if describe(message)["event_id"] == args.event_id:
                print(json.dumps({"headers": message.headers, "body": message.payload}, indent=2,
                                 default=str))
                return 0
    print(f"no parked message with event_id {args.event_id}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
