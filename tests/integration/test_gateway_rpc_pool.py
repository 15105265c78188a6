"""The gateway's pool of RPC proxies against the real broker, across a broker restart.

A proxy idle in the pool while the broker restarts still believes its connection is up. Its reply
queue, durable but with a time-to-live (nameko's ``x-expires``) and with no consumer since the
restart, is gone a few minutes later. A request sent through that proxy gets its reply published to
no queue: the caller waits out its whole timeout and answers 503. The pool checks a proxy before
lending it and replaces one whose connection the broker closed.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kombu import Connection

from gateway.rpc import RpcPool
from services.common.rpc import rpc
from tests.helpers import wait_for

SLOTS = 4


class EchoService:
    name = "pool_echo"

    @rpc
    def echo(self, value: Any) -> Any:
        return value


def calls(pool: RpcPool, count: int) -> list[Any]:
    """``count`` concurrent calls, so every slot of the pool is used; failures come back as text."""

    def one(value: int) -> Any:
        try:
            return pool.call("pool_echo", "echo", (value,), {}, correlation_id=f"pool-{value}",
                             timeout=3.0, safe=True)
        except Exception as exc:  # the assertion shows which calls failed and how
            return repr(exc)

    with ThreadPoolExecutor(max_workers=count) as threads:
        return list(threads.map(one, range(count)))


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


def test_idle_proxies_survive_a_broker_restart_whose_reply_queues_expired(start_service: Any,
                                                                          rabbit_config: dict) -> None:
    start_service(EchoService, database=False)
    uri = rabbit_config["AMQP_URI"]
    vhost = uri.rsplit("/", 1)[1]
    pool = RpcPool(uri, size=SLOTS, timeout=3.0)
    try:
        assert calls(pool, SLOTS) == list(range(SLOTS))

        # the restart, as the idle pool sees it: every connection closed by the broker...
        rabbitmqctl("close_all_connections", "--vhost", vhost, "test: broker restart")
        # ...and, minutes later, the reply queues nobody consumed expired
        reply_queues = [name for name in rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "name")
                        .split() if name.startswith("rpc.reply-standalone_rpc_proxy")]
        assert len(reply_queues) == SLOTS
        for name in reply_queues:
            rabbitmqctl("delete_queue", "-p", vhost, name)

        def consuming() -> bool:
            with Connection(uri) as connection:
                return connection.channel().queue_declare("rpc-pool_echo", passive=True).consumer_count > 0

        wait_for(consuming, what="the service to consume again")
        assert calls(pool, SLOTS) == list(range(SLOTS))
    finally:
        pool.close()
