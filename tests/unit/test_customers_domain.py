import pytest
from argon2 import PasswordHasher

from services.customers.domain import Passwords, normalize_email, profile_changes


def fast_hasher(**kw) -> PasswordHasher:
    return PasswordHasher(**{"time_cost": 1, "memory_cost": 8, "parallelism": 1, **kw})


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(fast_hasher())


def test_email_is_normalised():
    assert normalize_email("  Ann.Lee@Example.ORG \n") == "ann.lee@example.org"


def test_hash_verifies_only_its_password(passwords):
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "wrong horse")
    assert not passwords.verify("not a hash", "correct horse")


class CountingHasher(PasswordHasher):
    """Records which hashes were verified."""

    verified: list[str]

    def verify(self, hash: str, password: str) -> bool:
        self.verified.append(hash)
        return super().verify(hash, password)


def test_unknown_account_still_costs_a_verification():
    hasher = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    hasher.verified = []
    passwords = Passwords(hasher)
    assert not passwords.verify(None, "anything at all")
    calls = hasher.verified
    assert calls == [passwords.dummy_hash]
    # even the dummy's own password never authenticates a missing account
    assert not passwords.verify(None, "no account has this password")


def test_weaker_hashes_need_rehash(passwords):
    old = Passwords(fast_hasher(time_cost=1, memory_cost=8)).hash("pw123456")
    stronger = Passwords(fast_hasher(time_cost=2))
    assert stronger.needs_rehash(old)
    assert not stronger.needs_rehash(stronger.hash("pw123456"))


def test_profile_changes_keep_only_differences():
    assert profile_changes({"name": "Ann"}, {"name": "Ann"}) == {}
    assert profile_changes({"name": "Ann"}, {"name": "Anna"}) == {"name": "Anna"}
