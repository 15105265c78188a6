"""Customers: accounts, credentials and roles.

Password hashing runs in eventlet's thread pool: argon2 is deliberately slow
and would otherwise stall every other worker of the service. It always runs
before a transaction opens, never between a write and its commit.
"""

from __future__ import annotations

from typing import Any

from eventlet import tpool
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.common.errors import Conflict, NotFound, Unauthorized
from services.common.rpc import rpc
from services.common.schemas import load, require_id
from services.common.store import Store
from services.common.telemetry import Telemetry
from services.customers.domain import ROLE_ADMIN, ROLE_CUSTOMER, Passwords, profile_changes
from services.customers.models import Base, Customer
from services.customers.schemas import (
    EVENT_SCHEMAS,
    AdminSchema,
    CredentialsSchema,
    CustomerSchema,
    ProfileUpdateSchema,
    RegistrationSchema,
)

customer_schema = CustomerSchema()
passwords = Passwords()


def _get(session: Any, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


def _by_email(session: Any, email: str) -> Customer | None:
    return session.scalars(select(Customer).where(Customer.email == email)).first()


def _registered(customer: Customer) -> dict[str, Any]:
    return {"customer_id": customer.id, "email": customer.email, "name": customer.name}


class CustomersService:
    name = "customers"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry()

    @rpc
    def register(self, customer: dict) -> dict:
        """Self-registration: always a plain customer, whatever the caller wishes."""
        data = load(RegistrationSchema(), customer)
        password_hash = tpool.execute(passwords.hash, data.pop("password"))
        try:
            with self.store.transaction() as tx:
                created = Customer(**data, password_hash=password_hash, role=ROLE_CUSTOMER)
                tx.session.add(created)
                tx.session.flush()
                result = customer_schema.dump(created)
                tx.emit("customer_registered", _registered(created), aggregate_id=created.id)
        except IntegrityError:
            # also the loser of two concurrent registrations of one address
            raise Conflict("email is already registered") from None
        return result

    @rpc
    def authenticate(self, email: str, password: str) -> dict:
        """One answer for an unknown email and a wrong password, in the same time."""
        data = load(CredentialsSchema(), {"email": email, "password": password})
        with self.store.get_session(close_on_exit=True) as session:
            customer = _by_email(session, data["email"])
            stored_hash = customer.password_hash if customer else None
            result = customer_schema.dump(customer) if customer else None
        if not tpool.execute(passwords.verify, stored_hash, data["password"]):
            raise Unauthorized("invalid email or password")
        if passwords.needs_rehash(stored_hash):
            self._rehash(result["id"], stored_hash, data["password"])
        return result

    def _rehash(self, customer_id: int, old_hash: str, password: str) -> None:
        """Upgrade a hash made with old parameters, unless the password changed meanwhile."""
        new_hash = tpool.execute(passwords.hash, password)
        with self.store.transaction() as tx:
            tx.session.execute(
                update(Customer)
                .where(Customer.id == customer_id, Customer.password_hash == old_hash)
                .values(password_hash=new_hash)
            )

    @rpc
    def get_customer(self, customer_id: int) -> dict:
        customer_id = require_id(customer_id, "customer_id")
        with self.store.get_session(close_on_exit=True) as session:
            return customer_schema.dump(_get(session, customer_id))

    @rpc
    def update_profile(self, customer_id: int, changes: dict) -> dict:
        customer_id = require_id(customer_id, "customer_id")
        data = load(ProfileUpdateSchema(), changes)
        with self.store.transaction() as tx:
            customer = _get(tx.session, customer_id)
            changed = profile_changes({"name": customer.name}, data)
            if changed:
                for field, value in changed.items():
                    setattr(customer, field, value)
                tx.session.flush()
                tx.emit("customer_updated", {"customer_id": customer.id, **changed}, aggregate_id=customer.id)
            return customer_schema.dump(customer)

    @rpc
    def ensure_admin(self, email: str, password: str, name: str = "Administrator") -> dict:
        """Create or promote the configured admin and set its password; safe to repeat.

        Not for the gateway to expose: only operators (bootstrap_admin) call it.
        An existing account keeps its name.
        """
        data = load(AdminSchema(), {"email": email, "password": password, "name": name})
        password_hash = tpool.execute(passwords.hash, data["password"])
        try:
            with self.store.transaction() as tx:
                admin = _by_email(tx.session, data["email"])
                promoted = admin is None or admin.role != ROLE_ADMIN
                if admin is None:
                    admin = Customer(name=data["name"], email=data["email"], password_hash=password_hash,
                                     role=ROLE_ADMIN)
                    tx.session.add(admin)
                    tx.session.flush()
                    tx.emit("customer_registered", _registered(admin), aggregate_id=admin.id)
                else:
                    admin.role = ROLE_ADMIN
                    admin.password_hash = password_hash
                    tx.session.flush()
                ensured = {"customer_id": admin.id, "email": admin.email, "promoted": promoted}
                tx.emit("admin_ensured", ensured, aggregate_id=admin.id)
                result = customer_schema.dump(admin)
        except IntegrityError:
            raise Conflict("the admin account was created concurrently; run ensure_admin again") from None
        return result
