"""Gateway settings, read once from the environment when the app is created.

Every knob has a default that suits local development except the JWT
secret: outside ``GATEWAY_ENV=development`` the gateway refuses to start
without one, or with the placeholder shipped in ``.env.example``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

#: the value .env.example ships; never accepted outside development
EXAMPLE_SECRET = "change-me-this-is-not-a-secret"
#: a development-only secret used when GATEWAY_ENV=development and none is set
DEVELOPMENT_SECRET = "development-only-insecure-jwt-secret"
MIN_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """The gateway cannot start with these settings."""


def _pem(value: str | None) -> str | None:
    """A PEM given inline or as a path to a file holding it."""
    if not value:
        return None
    if value.lstrip().startswith("-----BEGIN"):
        return value
    path = Path(value)
    if not path.is_file():
        raise ConfigurationError(f"PEM file {value} does not exist")
    return path.read_text()


def _secret_file(path: str | None) -> str | None:
    """JWT_SECRET_FILE: the secret read from a file (e.g. one platform.sh generates with umask 077)."""
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as exc:
        raise ConfigurationError(f"cannot read JWT_SECRET_FILE {path}: {exc}") from None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name, default))
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        raise ConfigurationError(f"{name} must be a number") from None


@dataclass(frozen=True)
class Settings:
    env: str = "production"
    amqp_uri: str = "pyamqp://guest:guest@localhost:5672/"
    redis_url: str | None = None
    #: prefix of every Redis key (rate limits, breakers, idempotency), so stacks can share a server
    redis_namespace: str = "gateway"

    jwt_algorithm: str = "HS256"
    jwt_secret: str | None = None
    jwt_private_key: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str = "ecommerce-gateway"
    jwt_audience: str = "ecommerce-api"
    jwt_ttl_seconds: int = 3600
    jwt_leeway_seconds: int = 5

    rate_limit_api: str = "100/second"
    rate_limit_auth: str = "10/minute"
    rate_limit_enabled: bool = True

    rpc_timeout: float = 5.0
    #: proxies per worker process; one per request thread means nobody waits for one
    rpc_pool_size: int = 16
    breaker_fail_max: int = 5
    breaker_reset_timeout: float = 30.0
    idempotency_ttl_seconds: int = 86400
    #: how long an in-progress marker lives if its request died mid-way
    idempotency_lock_seconds: int = 60

    #: seconds a gateway worker keeps a product read (one product, a listing page); 0: no cache
    product_cache_seconds: float = 1.0

    max_content_length: int = 64 * 1024
    #: how many proxies in front of the gateway set X-Forwarded-For (0: trust none)
    trusted_proxies: int = 0

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def signing_key(self) -> str:
        return self.jwt_private_key if self.jwt_algorithm == "RS256" else self.jwt_secret  # type: ignore[return-value]

    @property
    def verifying_key(self) -> str:
        return self.jwt_public_key if self.jwt_algorithm == "RS256" else self.jwt_secret  # type: ignore[return-value]

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        amqp_uri = env.get("AMQP_URI")
        if not amqp_uri:
            from services.common.config import load_config

            amqp_uri = load_config()["AMQP_URI"]
        settings = cls(
            env=env.get("GATEWAY_ENV", "production"),
            amqp_uri=amqp_uri,
            redis_url=env.get("REDIS_URL") or None,
            redis_namespace=env.get("REDIS_NAMESPACE", "gateway"),
            jwt_algorithm=env.get("JWT_ALGORITHM", "HS256").upper(),
            jwt_secret=env.get("JWT_SECRET") or _secret_file(env.get("JWT_SECRET_FILE")),
            jwt_private_key=_pem(env.get("JWT_PRIVATE_KEY")),
            jwt_public_key=_pem(env.get("JWT_PUBLIC_KEY")),
            jwt_issuer=env.get("JWT_ISSUER", "ecommerce-gateway"),
            jwt_audience=env.get("JWT_AUDIENCE", "ecommerce-api"),
            jwt_ttl_seconds=_int(env, "JWT_TTL_SECONDS", 3600),
            rate_limit_api=env.get("RATE_LIMIT_API", "100/second"),
            rate_limit_auth=env.get("RATE_LIMIT_AUTH", "10/minute"),
            rate_limit_enabled=env.get("RATE_LIMIT_ENABLED", "1").lower() not in ("0", "false", "no"),
            rpc_timeout=_float(env, "RPC_TIMEOUT", 5.0),
            rpc_pool_size=_int(env, "RPC_POOL_SIZE", 16),
            breaker_fail_max=_int(env, "BREAKER_FAIL_MAX", 5),
            breaker_reset_timeout=_float(env, "BREAKER_RESET_TIMEOUT", 30.0),
            idempotency_ttl_seconds=_int(env, "IDEMPOTENCY_TTL_SECONDS", 86400),
            product_cache_seconds=_float(env, "PRODUCT_CACHE_SECONDS", 1.0),
            max_content_length=_int(env, "MAX_CONTENT_LENGTH", 64 * 1024),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0),
        )
        return settings.checked()

    def checked(self) -> Settings:
        """Refuse settings that would make tokens forgeable; fill in the dev secret."""
        if self.product_cache_seconds < 0:
            raise ConfigurationError("PRODUCT_CACHE_SECONDS must be 0 (no cache) or more")
        if self.jwt_algorithm not in ("HS256", "RS256"):
            raise ConfigurationError("JWT_ALGORITHM must be HS256 or RS256")
        if self.jwt_algorithm == "RS256":
            if not (self.jwt_private_key and self.jwt_public_key):
                raise ConfigurationError("JWT_ALGORITHM=RS256 needs JWT_PRIVATE_KEY and JWT_PUBLIC_KEY")
            return self
        secret = self.jwt_secret
        if self.development:
            return self if secret else self.replace(jwt_secret=DEVELOPMENT_SECRET)
        if not secret:
            raise ConfigurationError(
                "JWT_SECRET is not set; set it (e.g. to the output of"
                " `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
                " or run with GATEWAY_ENV=development"
            )
        if secret in (EXAMPLE_SECRET, DEVELOPMENT_SECRET):
            raise ConfigurationError("JWT_SECRET is the example value from .env.example; generate a real one")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(f"JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        return self
