"""How the platform's RPC entrypoint and RemoteService publish, against the real broker.

Replies go out transient and without publisher confirms (nameko's default is persistent and
confirmed); RemoteService requests go out transient with a TTL of the caller's timeout. Answers,
typed errors and InternalError still reach the caller as before.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from nameko.amqp import publish as nameko_publish

from services.common.errors import InternalError, NotFound
from services.common.rpc import RemoteService, rpc

SEEN: list[dict[str, Any]] = []


class EchoService:
    name = "rpc_echo"

    @rpc
    def echo(self, value: Any) -> Any:
        return value

    @rpc
    def missing(self) -> None:
        raise NotFound("nothing here")

    @rpc
    def broken(self) -> None:
        raise RuntimeError("a bug")


class CallerService:
    name = "rpc_caller"

    echo = RemoteService("rpc_echo", timeout=3)

    @rpc
    def relay(self, value: Any) -> Any:
        return self.echo.call("echo", value)


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every producer nameko's Publisher asks for: whether it waits for confirms."""
    calls: list[dict[str, Any]] = []
    original = nameko_publish.get_producer

    def spy(amqp_uri: str, confirms: bool = True, *args: Any, **kwargs: Any) -> Any:
        calls.append({"confirms": confirms})
        return original(amqp_uri, confirms, *args, **kwargs)

    monkeypatch.setattr(nameko_publish, "get_producer", spy)
    return calls


def raw_call(rabbit_config: dict, routing_key: str, args: list) -> tuple[dict, dict]:
    """One request through a plain kombu client; returns the reply body and its AMQP properties."""
    name = f"test-replies-{uuid.uuid4().hex[:8]}"
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        channel = connection.channel()
        replies = Queue(name, Exchange("nameko-rpc", type="topic", durable=True), routing_key=name,
                        exclusive=True)(channel)
        replies.declare()
        correlation_id = uuid.uuid4().hex
        connection.Producer(channel).publish(
            {"args": args, "kwargs": {}}, exchange="nameko-rpc", routing_key=routing_key,
            reply_to=name, correlation_id=correlation_id, serializer="json",
        )
        deadline = time.monotonic() + 5
        while (message := replies.get(no_ack=True)) is None:
            assert time.monotonic() < deadline, "no reply in 5 s"
            time.sleep(0.02)
        assert message.properties["correlation_id"] == correlation_id
        return json.loads(message.body), message.properties


def test_replies_are_transient_and_unconfirmed(start_service: Any, rabbit_config: dict,
                                               producers: list[dict[str, Any]]) -> None:
    start_service(EchoService, database=False)
    body, properties = raw_call(rabbit_config, "rpc_echo.echo", [{"a": 1}])
    assert body == {"result": {"a": 1}, "error": None}
    assert properties["delivery_mode"] == 1
    assert producers and not any(call["confirms"] for call in producers)


def test_answers_and_errors_still_reach_the_caller(start_service: Any, rpc_client: Any) -> None:
    start_service(EchoService, database=False)
    echo = rpc_client("rpc_echo")
    assert echo.echo([1, "two"]) == [1, "two"]
    with pytest.raises(NotFound):
        echo.missing()
    with pytest.raises(InternalError) as info:
        echo.broken()
    assert "reference" in str(info.value) and "a bug" not in str(info.value)


def test_remote_service_requests_are_transient_and_expire(start_service: Any, rpc_client: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    requests: list[dict[str, Any]] = []
    original = nameko_publish.Publisher.publish

    def spy(self: Any, payload: Any, **kwargs: Any) -> Any:
        if kwargs.get("routing_key") == "rpc_echo.echo":
            requests.append({"delivery_mode": self.delivery_mode, "expiration": self.expiration})
        return original(self, payload, **kwargs)

    monkeypatch.setattr(nameko_publish.Publisher, "publish", spy)
    start_service(EchoService, database=False)
    start_service(CallerService, database=False)
    assert rpc_client("rpc_caller").relay("hello") == "hello"
    assert requests == [{"delivery_mode": 1, "expiration": 3}]
