"""Work a service hands to itself: items its workers put, run by one of its methods, a batch at a time.

``@handed_off`` marks the method; a ``Handoff`` dependency gives the other entrypoints a ``put``.
The items put within ``LINGER`` seconds of the first go to one worker of their own. Nothing goes
through the broker: the orders service starts the saga of an order it has just committed this
way instead of consuming its own ``order_created`` event, which cost a round trip through the
broker, a queue and a consumer per order, and up to a consumer's wait before the saga began.

What is handed off lives in the process only, so a caller must be able to recover it when the
process dies first: the orders recovery timer resumes an order nobody advanced
(services/orders/use_cases.py, ``FIRST_CHECK``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import eventlet
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider, Entrypoint

#: seconds the first item waits for others to run with it
LINGER = 0.02


class HandedOff(Entrypoint):
    """The method the items go to; it is called with the list of them."""

    def setup(self) -> None:
        self.pending: list[Any] = []

    def put(self, item: Any) -> None:
        if not self.pending:
            self.container.spawn_managed_thread(self._run_soon, identifier=f"handoff:{self.method_name}")
        self.pending.append(item)

    def _run_soon(self) -> None:
        eventlet.sleep(LINGER)
        items, self.pending = self.pending, []
        with contextlib.suppress(ContainerBeingKilled):  # stopping: the caller's recovery takes them up
            self.container.spawn_worker(self, (items,), {})


handed_off = HandedOff.decorator


class Handoff(DependencyProvider):
    """``put(item)``: hand ``item`` to the service's ``@handed_off`` method ``method_name``."""

    def __init__(self, method_name: str):
        self.method_name = method_name

    def setup(self) -> None:
        targets = [ext for ext in self.container.entrypoints
                   if isinstance(ext, HandedOff) and ext.method_name == self.method_name]
        if len(targets) != 1:
            raise TypeError(f"{self.container.service_name} has no @handed_off method {self.method_name!r}")
        self.target = targets[0]

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.target.put
