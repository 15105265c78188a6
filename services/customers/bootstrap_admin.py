"""Create or promote the admin account named by ADMIN_EMAIL / ADMIN_PASSWORD.

    ADMIN_EMAIL=ops@example.com ADMIN_PASSWORD=... python -m services.customers.bootstrap_admin

Runs against a started customers service over RPC, so the password is hashed
and the account written by the service that owns it. Safe to run repeatedly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from services.common.warnings_filter import silence_eventlet_banner

silence_eventlet_banner()  # before nameko imports eventlet (services/common/warnings_filter.py)

from nameko.exceptions import RpcTimeout, UnknownService  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from services.common.config import load_config  # noqa: E402
from services.common.errors import ServiceError  # noqa: E402

REQUIRED = ("ADMIN_EMAIL", "ADMIN_PASSWORD")
TIMEOUT = 30


def main(environ: Mapping[str, str] = os.environ, config: dict[str, Any] | None = None) -> int:
    missing = [name for name in REQUIRED if not environ.get(name)]
    if missing:
        print(f"bootstrap_admin: set {' and '.join(missing)} in the environment", file=sys.stderr)
        return 2
    try:
        with ClusterRpcProxy(config or load_config(), timeout=TIMEOUT) as cluster:
            admin = cluster.customers.ensure_admin(environ["ADMIN_EMAIL"], environ["ADMIN_PASSWORD"])
    except ServiceError as exc:
        print(f"bootstrap_admin: {exc} {exc.details or ''}".rstrip(), file=sys.stderr)
        return 1
    except (RpcTimeout, UnknownService):
        print("bootstrap_admin: the customers service did not answer; is it running?", file=sys.stderr)
        return 1
    print(f"admin account {admin['email']} (id {admin['id']}) is ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
