"""Work a service hands to itself (services/common/handoff.py), in a real nameko container with no broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import eventlet
import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import dummy, entrypoint_hook

from services.common import handoff
from services.common.handoff import Handoff, handed_off

batches: list[list[Any]] = []


class Collector:
    name = "collector"
    hand_off = Handoff("collect")

    @dummy
    def accept(self, item: Any) -> str:
        self.hand_off(item)
        return "accepted"

    @handed_off
    def collect(self, items: list[Any]) -> None:
        batches.append(items)


@pytest.fixture
def container() -> Iterator[ServiceContainer]:
    batches.clear()
    container = ServiceContainer(Collector, {})
    container.start()
    yield container
    container.stop()


def test_what_is_put_within_the_linger_runs_in_one_worker_after_the_callers_returned(
        container: ServiceContainer) -> None:
    with entrypoint_hook(container, "accept") as accept:
        assert [accept(n) for n in range(5)] == ["accepted"] * 5
    assert batches == []  # not in the callers' workers
    eventlet.sleep(handoff.LINGER * 5)
    assert batches == [[0, 1, 2, 3, 4]]
    with entrypoint_hook(container, "accept") as accept:
        accept("later")
    eventlet.sleep(handoff.LINGER * 5)
    assert batches == [[0, 1, 2, 3, 4], ["later"]]


def test_a_handoff_to_a_method_that_is_not_handed_off_is_refused() -> None:
    class Misnamed:
        name = "misnamed"
        hand_off = Handoff("nowhere")

        @dummy
        def accept(self) -> None:
            pass

    with pytest.raises(TypeError, match="no @handed_off method 'nowhere'"):
        ServiceContainer(Misnamed, {}).start()
