"""Operators' command for sagas parked after too many technical failures (``make stalled``).

    python -m services.orders.stalled list            # one line per stalled order, with the reason
    python -m services.orders.stalled resume ORDER_ID # retry its step (the recovery timer runs it)

The same as ``GET /api/orders/stalled`` and ``POST /api/orders/<id>/resume`` for an admin.
Set ``AMQP_URI`` to reach another vhost.
"""

from __future__ import annotations

import argparse
import sys

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.config import load_config
from services.common.errors import ServiceError

TIMEOUT = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.orders.stalled", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list stalled orders")
    resume = commands.add_parser("resume", help="resume one stalled order")
    resume.add_argument("order_id", type=int)
    args = parser.parse_args(argv)
    try:
        with ClusterRpcProxy(load_config(), timeout=TIMEOUT) as cluster:
            if args.command == "list":
                stalled = cluster.orders.list_stalled()
                print(f"{len(stalled)} stalled order(s)")
                for order in stalled:
                    print(f"order {order['id']}  {order['status']:<9} customer {order['customer_id']}  "
                          f"attempts={order['attempts']}  {order['stalled_reason']}")
                return 0
            order = cluster.orders.resume_stalled(args.order_id)
            print(f"order {order['id']} resumed ({order['status']}); its step is retried within a second")
            return 0
    except (ServiceError, RemoteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
