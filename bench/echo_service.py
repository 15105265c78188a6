"""The Nameko floor: a service that answers at once, run like the platform's services.

``nameko run --config config.yml bench.echo_service`` in the stack's vhost. It
uses the platform's own ``rpc`` entrypoint (services.common.rpc), so the round
trip costs what a real service's costs minus its database work.
"""

from typing import Any

from nameko.rpc import rpc as nameko_rpc

from services.common.rpc import rpc


class BenchEcho:
    name = "bench_echo"

    @rpc
    def ping(self, value: Any = None) -> Any:
        return value


class NamekoDefaultEcho:
    """The same with nameko's own ``rpc`` entrypoint: its replies are persistent and wait for the
    broker's publisher confirm (what services.common.rpc replaced); for ``python -m bench.replies``."""

    name = "bench_echo_nameko_default"

    @nameko_rpc
    def ping(self, value: Any = None) -> Any:
        return value
