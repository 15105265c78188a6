import json
import os
import subprocess
import sys
import time
from pathlib import Path

import eventlet
import pytest
from argon2 import PasswordHasher
from sqlalchemy import insert, select

from services.common.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from services.common.messaging import event_handler
from services.customers import bootstrap_admin
from services.customers.models import Customer
from services.customers.service import CustomersService
from tests.helpers import service_database, service_rows, wait_for

ROOT = Path(__file__).resolve().parents[2]
ANN = {"name": "Ann Lee", "email": "ann@example.org", "password": "correct horse"}
RECEIVED: list[tuple[str, dict]] = []


class CustomerEventsProbe:
    """Stand-in consumer that records what the customers service published."""

    name = "customer_events_probe"

    @event_handler("customers", "customer_registered")
    def registered(self, envelope: dict) -> None:
        RECEIVED.append(("customer_registered", envelope["payload"]))

    @event_handler("customers", "customer_updated")
    def updated(self, envelope: dict) -> None:
        RECEIVED.append(("customer_updated", envelope["payload"]))

    @event_handler("customers", "admin_ensured")
    def admin_ensured(self, envelope: dict) -> None:
        RECEIVED.append(("admin_ensured", envelope["payload"]))


@pytest.fixture
def container(start_service, database_flavour):
    return start_service(CustomersService, flavour=database_flavour)


@pytest.fixture
def customers(container, rpc_client):
    return rpc_client("customers")


def stored_hashes(container) -> dict[str, str]:
    return dict(service_rows(container, select(Customer.email, Customer.password_hash)))


def test_register_authenticate_read_and_update(customers):
    created = customers.register({**ANN, "name": "  Ann Lee ", "email": "  Ann@Example.ORG "})
    assert set(created) == {"id", "name", "email", "role", "created_at"}
    assert created["email"] == "ann@example.org" and created["name"] == "Ann Lee"
    assert created["role"] == "customer"

    assert customers.authenticate(" ANN@example.org", "correct horse") == created
    assert customers.get_customer(created["id"]) == created

    updated = customers.update_profile(created["id"], {"name": "Ann Lee-Smith"})
    assert updated["name"] == "Ann Lee-Smith" and updated["email"] == "ann@example.org"
    assert customers.get_customer(created["id"])["name"] == "Ann Lee-Smith"


def test_duplicate_email_is_a_conflict_even_under_a_race(customers, rpc_client, container):
    customers.register(ANN)
    with pytest.raises(Conflict):
        customers.register({**ANN, "email": "ANN@example.org", "name": "Impostor"})

    proxies = [rpc_client("customers") for _ in range(4)]

    def attempt(proxy):
        try:
            return proxy.register({**ANN, "email": "race@example.org"})
        except Conflict:
            return None

    results = list(eventlet.GreenPool(4).imap(attempt, proxies))
    assert sum(result is not None for result in results) == 1
    assert sorted(stored_hashes(container)) == ["ann@example.org", "race@example.org"]


def test_hashing_does_not_stall_other_calls(customers, rpc_client):
    """argon2 runs in eventlet's thread pool: a read is answered while registrations hash."""
    known = customers.register(ANN)
    proxies = [rpc_client("customers") for _ in range(2)]
    finished: list[float] = []

    def register(index, proxy):
        proxy.register({**ANN, "email": f"slow{index}@example.org"})
        finished.append(time.monotonic())

    pool = eventlet.GreenPool()
    for index, proxy in enumerate(proxies):
        pool.spawn(register, index, proxy)
    eventlet.sleep(0.05)  # both hashes under way (each takes a few hundred ms)
    assert customers.get_customer(known["id"])["id"] == known["id"]
    answered = time.monotonic()
    pool.waitall()
    assert len(finished) == 2 and answered < min(finished)


def test_wrong_credentials_are_indistinguishable(customers):
    customers.register(ANN)
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    for _ in range(3):
        for kind, email in (("unknown", "nobody@example.org"), ("wrong", ANN["email"])):
            started = time.monotonic()
            with pytest.raises(Unauthorized) as info:
                customers.authenticate(email, "not the password")
            timings[kind].append(time.monotonic() - started)
            assert info.value.message == "invalid email or password"
    # an unknown email still pays for a full hash verification
    assert min(timings["unknown"]) > 0.5 * min(timings["wrong"])


def test_login_upgrades_a_weak_hash(customers, container):
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("old but valid")
    with service_database(container) as engine, engine.begin() as conn:
        conn.execute(insert(Customer).values(name="Old", email="old@example.org", password_hash=weak,
                                             role="customer"))
    assert customers.authenticate("old@example.org", "old but valid")["email"] == "old@example.org"
    upgraded = stored_hashes(container)["old@example.org"]
    assert upgraded != weak and not PasswordHasher().check_needs_rehash(upgraded)
    assert customers.authenticate("old@example.org", "old but valid")["name"] == "Old"


def test_bad_input_is_rejected_and_writes_nothing(customers, container):
    ann = customers.register(ANN)
    bad_registrations = [
        {**ANN, "email": "eve@example.org", "role": "admin"},  # no self-made admins
        {**ANN, "email": "not-an-email"},
        {**ANN, "email": "'; DROP TABLE customers; --"},
        {**ANN, "email": "x" * 100_000 + "@example.org"},
        {**ANN, "email": "eve@example.org", "password": "short"},
        {**ANN, "email": "eve@example.org", "password": "p" * 129},
        {**ANN, "email": "eve@example.org", "name": "   "},
        {**ANN, "email": "eve@example.org", "name": 42},
        {**ANN, "email": ["eve@example.org"]},
        {"email": "eve@example.org", "password": "correct horse"},
        "name=eve",
        None,
    ]
    for payload in bad_registrations:
        with pytest.raises(ValidationFailed):
            customers.register(payload)
    with pytest.raises(ValidationFailed) as info:
        customers.register({**ANN, "email": "eve@example.org", "role": "admin"})
    assert "role" in info.value.details["fields"]

    for email, password in [(42, "correct horse"), (ANN["email"], "p" * 10_000), (ANN["email"], None),
                            ("' OR '1'='1", "' OR '1'='1")]:
        with pytest.raises(ValidationFailed):
            customers.authenticate(email, password)
    for customer_id in ["1 OR 1=1", -1, 0, True, 1.5, None]:
        with pytest.raises(ValidationFailed):
            customers.get_customer(customer_id)
        with pytest.raises(ValidationFailed):
            customers.update_profile(customer_id, {"name": "Mallory"})
    with pytest.raises(NotFound):
        customers.get_customer(999)
    with pytest.raises(NotFound):
        customers.update_profile(999, {"name": "Mallory"})
    for changes in [{"name": "x" * 100_000}, {"name": "Ann", "role": "admin"}, {"name": ""},
                    {"email": "a@b.org"}, {}, ["name"]]:
        with pytest.raises(ValidationFailed):
            customers.update_profile(ann["id"], changes)
    for email, password in [("not-an-email", "long enough"), ("ops@example.org", "short"), (None, None)]:
        with pytest.raises(ValidationFailed):
            customers.ensure_admin(email, password)

    assert stored_hashes(container).keys() == {"ann@example.org"}
    assert customers.get_customer(ann["id"]) == ann

    # an SQL-looking name is just a name: stored verbatim, nothing else happens
    bobby_tables = "Robert'); DROP TABLE customers;--"
    bobby = customers.register({**ANN, "email": "bobby@example.org", "name": bobby_tables})
    assert customers.get_customer(bobby["id"])["name"] == bobby_tables


def test_password_hash_never_leaves_the_service(customers, container):
    results = [customers.register(ANN)]
    results.append(customers.authenticate(ANN["email"], ANN["password"]))
    results.append(customers.get_customer(results[0]["id"]))
    results.append(customers.update_profile(results[0]["id"], {"name": "Ann B"}))
    results.append(customers.ensure_admin("ops@example.org", "admin password"))
    results.append(customers.ensure_admin(ANN["email"], "promoted password"))
    for call in (lambda: customers.register(ANN), lambda: customers.register({**ANN, "password": "x"})):
        with pytest.raises((Conflict, ValidationFailed)) as info:
            call()
        results.append({"message": info.value.message, "details": info.value.details})

    hashes = stored_hashes(container).values()
    assert all(h.startswith("$argon2id$") for h in hashes)
    leaked = json.dumps(results, default=str)
    assert "$argon2" not in leaked and "password_hash" not in leaked
    assert not any(h in leaked or h.split("$")[-1] in leaked for h in hashes)
    for password in ("correct horse", "admin password", "promoted password"):
        assert password not in leaked


def test_ensure_admin_creates_promotes_and_repeats(customers):
    admin = customers.ensure_admin("Ops@Example.org", "admin password")
    assert admin["role"] == "admin" and admin["email"] == "ops@example.org"
    assert admin["name"] == "Administrator"
    assert customers.authenticate("ops@example.org", "admin password")["role"] == "admin"

    again = customers.ensure_admin("ops@example.org", "rotated password", "Ignored")
    assert again == admin
    with pytest.raises(Unauthorized):
        customers.authenticate("ops@example.org", "admin password")
    assert customers.authenticate("ops@example.org", "rotated password")["id"] == admin["id"]

    ann = customers.register(ANN)
    promoted = customers.ensure_admin("ANN@example.org", "new admin password", "Root")
    assert promoted["id"] == ann["id"] and promoted["role"] == "admin" and promoted["name"] == "Ann Lee"
    with pytest.raises(Unauthorized):
        customers.authenticate(ANN["email"], ANN["password"])
    assert customers.authenticate(ANN["email"], "new admin password")["role"] == "admin"


def test_state_changes_are_published(start_service, database_flavour, rpc_client):
    RECEIVED.clear()
    start_service(CustomerEventsProbe, database=False)
    start_service(CustomersService, flavour=database_flavour)
    customers = rpc_client("customers")

    ann = customers.register(ANN)
    customers.update_profile(ann["id"], {"name": "Ann B"})
    customers.update_profile(ann["id"], {"name": "Ann B"})  # no change, no event
    admin = customers.ensure_admin("ops@example.org", "admin password")
    customers.ensure_admin(ANN["email"], "admin password")

    wait_for(lambda: len(RECEIVED) >= 5, timeout=10, interval=0.05, what="five customer events")
    eventlet.sleep(0.3)
    assert sorted(RECEIVED, key=lambda event: (event[0], event[1]["customer_id"])) == [
        ("admin_ensured", {"customer_id": ann["id"], "email": ANN["email"], "promoted": True}),
        ("admin_ensured", {"customer_id": admin["id"], "email": "ops@example.org", "promoted": True}),
        ("customer_registered", {"customer_id": ann["id"], "email": ANN["email"], "name": "Ann Lee"}),
        ("customer_registered", {"customer_id": admin["id"], "email": "ops@example.org",
                                 "name": "Administrator"}),
        ("customer_updated", {"customer_id": ann["id"], "name": "Ann B"}),
    ]


def test_bootstrap_admin_cli(customers, rabbit_config, capsys):
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADMIN_")}
    env.update(PYTHONPATH=str(ROOT), ADMIN_EMAIL="ops@example.org")
    missing = subprocess.run([sys.executable, "-m", "services.customers.bootstrap_admin"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "ADMIN_PASSWORD" in missing.stderr

    assert bootstrap_admin.main({"ADMIN_EMAIL": "ops@example.org", "ADMIN_PASSWORD": "short"},
                                config=rabbit_config) == 1
    assert "invalid input" in capsys.readouterr().err

    environ = {"ADMIN_EMAIL": "ops@example.org", "ADMIN_PASSWORD": "admin password"}
    assert bootstrap_admin.main(environ, config=rabbit_config) == 0
    assert "ops@example.org" in capsys.readouterr().out
    assert bootstrap_admin.main(environ, config=rabbit_config) == 0
    assert customers.authenticate("ops@example.org", "admin password")["role"] == "admin"
