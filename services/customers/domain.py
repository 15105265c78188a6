"""Customer rules: email identity, roles and password hashing.

Pure code (no broker, no database) so the rules are unit-tested directly.
"""

from __future__ import annotations

from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLE_CUSTOMER = "customer"
ROLE_ADMIN = "admin"

PASSWORD_MIN_LENGTH = 8
# bounded so a huge password cannot make hashing a denial of service
PASSWORD_MAX_LENGTH = 128


def normalize_email(email: str) -> str:
    """One spelling per address, so uniqueness and login ignore case and padding."""
    return email.strip().lower()


def profile_changes(current: dict[str, str], requested: dict[str, str]) -> dict[str, str]:
    """The requested fields whose value differs; an empty result is not a fact worth an event."""
    return {field: value for field, value in requested.items() if current.get(field) != value}


class Passwords:
    """argon2 hashing with a constant-work check for unknown accounts."""

    def __init__(self, hasher: PasswordHasher | None = None):
        self.hasher = hasher or PasswordHasher()

    @cached_property
    def dummy_hash(self) -> str:
        """A hash with the same parameters, verified when there is no account to verify against."""
        return self.hasher.hash("no account has this password")

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True only for a matching hash; an unknown account costs the same verification."""
        try:
            matched = self.hasher.verify(stored_hash or self.dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than the current ones."""
        return self.hasher.check_needs_rehash(stored_hash)
