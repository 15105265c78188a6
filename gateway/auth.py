"""JWT access tokens (PyJWT) and role checks.

Tokens are signed with HS256 and ``JWT_SECRET`` by default, or RS256 with
``JWT_PRIVATE_KEY``/``JWT_PUBLIC_KEY``. Verification pins the one configured
algorithm (so ``alg: none`` and HS/RS confusion are refused) and requires
``exp``, ``iat``, ``iss``, ``aud`` and ``sub``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import jwt
from flask import current_app, g, request

from gateway.config import Settings
from gateway.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])

ROLE_ADMIN = "admin"
ROLE_CUSTOMER = "customer"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


@dataclass(frozen=True)
class User:
    id: int
    role: str
    email: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


def issue_token(settings: Settings, customer: dict[str, Any], now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": str(customer["id"]),
        "role": customer.get("role", ROLE_CUSTOMER),
        "email": customer.get("email"),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + settings.jwt_ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.signing_key, algorithm=settings.jwt_algorithm)


def decode_token(settings: Settings, token: str) -> User:
    """The token's user, or ``ApiError('invalid-token')`` for anything wrong with it."""
    try:
        claims = jwt.decode(
            token,
            settings.verifying_key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": REQUIRED_CLAIMS},
        )
        user_id = int(claims["sub"])
        role = claims.get("role")
        if user_id < 1 or role not in (ROLE_ADMIN, ROLE_CUSTOMER):
            raise jwt.InvalidTokenError("bad subject or role")
    except jwt.ExpiredSignatureError:
        raise _invalid("The access token has expired.") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise _invalid("The access token is invalid.") from None
    return User(id=user_id, role=role, email=claims.get("email"))


def _invalid(detail: str) -> ApiError:
    return ApiError("invalid-token", detail,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def optional_user() -> User | None:
    """The request's user if it carries a valid token; None without one. Cached per request."""
    if "auth_user" in g:
        user = g.auth_user
        if isinstance(user, ApiError):
            raise user
        return user
    token = _bearer()
    user: User | ApiError | None = None
    if token is not None:
        try:
            user = decode_token(current_app.extensions["gateway.settings"], token)
        except ApiError as exc:
            user = exc
    g.auth_user = user
    if isinstance(user, ApiError):
        raise user
    return user


def current_user() -> User:
    user = optional_user()
    if user is None:
        if request.headers.get("Authorization"):
            raise _invalid("The Authorization header must be 'Bearer <token>'.")
        raise ApiError("unauthorized", "This endpoint needs a bearer token (POST /auth/login).",
                       headers={"WWW-Authenticate": 'Bearer realm="api"'})
    return user


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_user()
        return view(*args, **kwargs)

    wrapper.__auth__ = "user"  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def admin_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user().is_admin:
            raise ApiError("forbidden", "This endpoint is for administrators.")
        return view(*args, **kwargs)

    wrapper.__auth__ = "admin"  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def rate_limit_key() -> str:
    """Per user when the request carries a valid token, per client address otherwise."""
    try:
        user = optional_user()
    except ApiError:
        user = None
    if user is not None:
        return f"user:{user.id}"
    return f"ip:{request.remote_addr or 'unknown'}"


def client_ip() -> str:
    return f"ip:{request.remote_addr or 'unknown'}"
