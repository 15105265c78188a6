"""The outbox relay: publishes committed events to RabbitMQ, then marks them.

Publishing uses publisher confirms, and a row is marked published only after
the broker confirmed it, so a crash or a broker outage at any point leads to a
re-publish, never to a loss. Re-publishing can duplicate an event; consumers
deduplicate by ``event_id``.

A pass publishes every pending row (up to ``BATCH_SIZE``) and then waits once for
the broker to confirm them all, instead of waiting for a confirm after each row;
a wake-up lingers ``LINGER`` seconds first, so the events of transactions that
commit close together travel in one pass (one read, one confirm wait, one update), and its
publishes leave in as few TCP segments as they fit in (``_corked``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import eventlet
from eventlet.queue import Empty, Full, LightQueue
from kombu import Connection, Exchange, Producer
from sqlalchemy import Table, Text, bindparam, cast, delete, select, update

log = logging.getLogger(__name__)

#: how often the relay looks for rows when nobody wakes it (crash recovery)
POLL_INTERVAL = 1.0
BATCH_SIZE = 200
#: seconds a wake-up waits for more commits before publishing
LINGER = 0.005
#: seconds to wait for the broker's confirms of one pass
CONFIRM_TIMEOUT = 10.0
#: published rows are kept this long for audits, then pruned
RETENTION = timedelta(days=1)
MAX_BACKOFF = 5.0


def event_exchange(service_name: str) -> Exchange:
    """The exchange nameko's ``event_handler`` binds to for ``service_name``."""
    return Exchange(f"{service_name}.events", type="topic", durable=True, auto_delete=False)


class Unconfirmed(Exception):
    """The broker refused (nacked) a publish, or did not confirm it in time."""


class OutboxRelay:
    def __init__(self, service_name: str, amqp_uri: str, session_factory: Any, outbox: Table):
        self.service_name = service_name
        self.amqp_uri = amqp_uri
        self.session_factory = session_factory
        self.outbox = outbox
        # built once (a reused statement's cache key is memoized): one pass's read and its update.
        # The envelope is read as the JSON text it was stored as and published as it is: decoding it
        # here only to encode it again was a tenth of a relay's pass.
        self._pending = (select(outbox.c.id, outbox.c.event_type,
                                cast(outbox.c.envelope, Text).label("body"),
                                outbox.c.envelope["correlation_id"].as_string().label("correlation_id"))
                         .where(outbox.c.published_at.is_(None)).order_by(outbox.c.id).limit(BATCH_SIZE))
        self._mark_published = (update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True)))
                                .values(published_at=bindparam("at")))
        self.exchange = event_exchange(service_name)
        self._wakeups: LightQueue = LightQueue(maxsize=1)
        self._thread: Any = None
        self._connection: Connection | None = None
        self._channel: Any = None
        #: delivery tags published on the channel and not confirmed yet
        self._unconfirmed: set[int] = set()
        self._nacked = False

    def start(self) -> None:
        self._thread = eventlet.spawn(self._run)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.kill()
            self._thread = None
        self._disconnect()

    def wake(self) -> None:
        """Ask for a publish pass now instead of at the next poll."""
        with contextlib.suppress(Full):  # a pass is already pending
            self._wakeups.put_nowait(True)

    def _run(self) -> None:
        backoff = 0.1
        last_prune = datetime.min.replace(tzinfo=UTC)
        while True:
            try:
                while self.publish_pending():
                    pass
                backoff = 0.1
                now = datetime.now(UTC)
                if now - last_prune > timedelta(minutes=10):
                    self._prune(now)
                    last_prune = now
            except Exception:  # the relay must outlive any broker or database outage
                log.warning("outbox relay of %s failed; retrying in %.1fs",
                            self.service_name, backoff, exc_info=True)
                self._disconnect()
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            with contextlib.suppress(Empty):
                self._wakeups.get(timeout=POLL_INTERVAL)
                eventlet.sleep(LINGER)

    def publish_pending(self) -> bool:
        """Publish one batch; True when a full batch suggests more are waiting."""
        with self.session_factory() as session:
            rows = session.execute(self._pending).all()
        if not rows:
            return False
        producer = self._producer()
        with self._corked():
            self._publish_rows(producer, rows)
        self._wait_for_confirms()
        with self.session_factory.begin() as session:
            session.execute(self._mark_published, {"ids": [row.id for row in rows], "at": datetime.now(UTC)})
        return len(rows) == BATCH_SIZE

    def _publish_rows(self, producer: Producer, rows: list[Any]) -> None:
        for row in rows:
            producer.publish(
                row.body,
                exchange=self.exchange,
                routing_key=row.event_type,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                # nameko reads context data (the correlation id) from these headers
                headers={"nameko.correlation_id": row.correlation_id} if row.correlation_id else {},
                retry=False,
            )
            self._published += 1
            self._unconfirmed.add(self._published)

    @contextlib.contextmanager
    def _corked(self) -> Any:
        """Hold a pass's publishes in the kernel until the last one is written (Linux's TCP_CORK):
        the broker gets them in a few segments instead of one per event, and on loopback a
        segment's sender also does its receiver's share of the work."""
        cork = getattr(socket, "TCP_CORK", None)
        sock = getattr(self._connection.connection, "sock", None) if self._connection else None
        if cork is None or sock is None:
            yield
            return
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):  # a broken connection: the confirms' wait reports it
                sock.setsockopt(socket.IPPROTO_TCP, cork, 0)

    def _producer(self) -> Producer:
        if self._connection is None:
            connection = Connection(self.amqp_uri)
            connection.ensure_connection(max_retries=1)
            self._connection = connection
            self._channel = connection.channel()
            # confirms on, but not kombu's wait-after-each-publish: _wait_for_confirms waits once per pass
            self._channel.confirm_select()
            self._channel.events["basic_ack"].add(self._on_ack)
            self._channel.events["basic_nack"].add(self._on_nack)
            self._published = 0  # the channel numbers its publishes from 1
            self._unconfirmed = set()
            self._producer_obj = Producer(self._channel)
            self.exchange(self._channel).declare()
        return self._producer_obj

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True
        self._on_ack(delivery_tag, multiple)

    def _wait_for_confirms(self) -> None:
        """Wait until the broker confirmed every publish of the pass; raises Unconfirmed (the rows
        stay unpublished and the next pass sends them again) on a nack or a time-out."""
        assert self._connection is not None
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        try:
            while self._unconfirmed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Unconfirmed(f"{len(self._unconfirmed)} unconfirmed after {CONFIRM_TIMEOUT}s")
                with contextlib.suppress(socket.timeout):
                    self._connection.drain_events(timeout=remaining)
            if self._nacked:
                raise Unconfirmed("the broker refused a publish")
        finally:
            self._nacked = False

    def _disconnect(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                self._connection.release()
            self._connection = None
            self._channel = None

    def _prune(self, now: datetime) -> None:
        with self.session_factory.begin() as session:
            session.execute(
                delete(self.outbox).where(self.outbox.c.published_at < now - RETENTION)
            )
