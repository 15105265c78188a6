"""Shared fixtures. Integration tests run against the real local RabbitMQ
(each test in its own vhost, from nameko's ``rabbit_config``) and a real
database: a fresh SQLite file, or a fresh PostgreSQL database when the test
asks for the ``postgresql`` flavour.
"""

import eventlet

eventlet.monkey_patch()  # before anything imports sockets; nameko's plugin no longer does it

import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from nameko.standalone.rpc import ServiceRpcProxy  # noqa: E402
from sqlalchemy import MetaData, create_engine, text  # noqa: E402
from sqlalchemy.exc import ProgrammingError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "scripts" / "infra.sh"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A database of the local server to issue CREATE/DROP DATABASE from."""
    return subprocess.run(
        ["bash", str(INFRA), "pg-url", "ecommerce_tests"], check=True, capture_output=True, text=True
    ).stdout.strip()


def _admin_execute(admin_url: str, statement: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_flavour(request: Any) -> str:
    """Parametrise a test over both databases the services support."""
    return request.param


@pytest.fixture
def database_factory(tmp_path: Path, request: Any) -> Iterator[Callable[..., str]]:
    """Make an empty database with ``metadata``'s tables; returns its URL."""
    created: list[tuple[str, Any]] = []

    def make(metadata: MetaData, flavour: str = "sqlite") -> str:
        if flavour == "postgresql":
            admin_url = request.getfixturevalue("postgres_admin_url")
            name = f"test_{uuid.uuid4().hex[:12]}"
            _admin_execute(admin_url, f"CREATE DATABASE {name}")
            url = admin_url.rsplit("/", 1)[0] + "/" + name
        else:
            name = ""
            url = f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:8]}.db"
        engine = create_engine(url)
        metadata.create_all(engine)
        created.append((name, engine))
        return url

    yield make
    for name, engine in created:
        engine.dispose()
        if name:
            _drop_database(request.getfixturevalue("postgres_admin_url"), name)


#: PostgreSQL's insufficient_privilege
INSUFFICIENT_PRIVILEGE = "42501"


def _drop_database(admin_url: str, name: str, attempts: int = 20) -> None:
    """Drop a test database, ending its connections. An autovacuum worker that is in the new database
    at that moment is not the test role's to end (FORCE then fails with insufficient_privilege, as
    in one CI run): it is gone a moment later, so try again."""
    for attempt in range(attempts):
        try:
            _admin_execute(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except ProgrammingError as exc:
            if getattr(exc.orig, "pgcode", None) != INSUFFICIENT_PRIVILEGE or attempt == attempts - 1:
                raise
            time.sleep(0.25)


@pytest.fixture
def start_service(
    database_factory: Callable[..., str], container_factory: Any, rabbit_config: dict
) -> Callable[..., Any]:
    """Run a real service container on the test's vhost with its own database.

    ``database_factory`` comes first so its teardown (dropping the databases)
    runs after the containers have stopped.

    ``start_service(OrdersService, flavour="postgresql")`` returns the started
    container; pass ``database=False`` for a stand-in service without one.
    """

    def start(service_cls: type, flavour: str = "sqlite", database: bool = True,
              **config: Any) -> Any:
        cfg = dict(rabbit_config)
        cfg.update(config)
        if database:
            from importlib import import_module

            models = import_module(service_cls.__module__.rsplit(".", 1)[0] + ".models")
            cfg["DB_URIS"] = {f"{service_cls.name}:Base": database_factory(models.Base.metadata, flavour)}
        container = container_factory(service_cls, cfg)
        container.start()
        return container

    return start


@pytest.fixture
def rpc_client(rabbit_config: dict) -> Callable[[str], Any]:
    """``rpc_client("catalog")`` is a standalone proxy to that service."""
    proxies: list[Any] = []

    def make(service: str, timeout: float = 10) -> Any:
        proxy = ServiceRpcProxy(service, rabbit_config, timeout=timeout)
        proxies.append(proxy)
        return proxy.start()

    yield make
    for proxy in proxies:
        proxy.stop()
