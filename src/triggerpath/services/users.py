"""User administration: create users, change role or status, issue and revoke API keys.

Shown once, stored never: passwords are kept as Argon2 hashes and API keys as HMAC
digests; the plain values are returned to the caller exactly once.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from uuid import UUID, uuid4

from triggerpath.errors import Conflict, InvalidInput, NotFound
from triggerpath.services.auth import (
    API_KEY_PREFIX,
    MIN_PASSWORD,
    digest,
    hash_password,
    new_token,
)
from triggerpath.services.model import ROLES, ApiKey, Role, User, Window
from triggerpath.services.uow import UnitOfWork

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
DEV_ADMIN = "admin"


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise InvalidInput.single(
            "username", "2-64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput.single("password", f"at least {MIN_PASSWORD} characters")
    if len(password) > 256:
        raise InvalidInput.single("password", "at most 256 characters")
    return password


def check_role(role: str) -> Role:
    for r in ROLES:
        if r == role:
            return r
    raise InvalidInput.single("role", f"one of {', '.join(ROLES)}")


def create_user(
    uow: UnitOfWork,
    *,
    username: str,
    role: str,
    password: str | None,
    now: datetime,
    created_by: str | None,
) -> User:
    """A new active user; ``password=None`` makes a system account (API keys only)."""
    check_username(username)
    valid_role = check_role(role)
    if password is not None:
        check_password(password)
    if uow.users.by_username(username) is not None:
        raise Conflict(f"username: {username!r} is taken")
    user = User(
        id=uuid4(),
        username=username,
        role=valid_role,
        active=True,
        created_at=now,
        created_by=created_by,
        password_hash=hash_password(password) if password is not None else None,
    )
    uow.users.add(user)
    return user


def get_user(uow: UnitOfWork, user_id: UUID) -> User:
    user = uow.users.get(user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def update_user(
    uow: UnitOfWork,
    user_id: UUID,
    *,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    get_user(uow, user_id)  # NotFound first
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = check_role(role)
    if active is not None:
        values["active"] = active
    if password is not None:
        values["password_hash"] = hash_password(check_password(password))
    if values:
        uow.users.update(user_id, **values)
    return get_user(uow, user_id)


def list_users(uow: UnitOfWork, window: Window) -> tuple[list[User], int]:
    return uow.users.page(window)


def create_api_key(
    uow: UnitOfWork,
    secret_key: str,
    user_id: UUID,
    *,
    name: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new API key for the user: (its record, the token to show once)."""
    user = get_user(uow, user_id)
    if not user.active:
        raise Conflict(f"user {user.username!r} is deactivated")
    if expires_at is not None and expires_at <= now:
        raise InvalidInput.single("expires_at", "must be in the future")
    token = new_token(API_KEY_PREFIX)
    key = ApiKey(
        id=uuid4(),
        user_id=user_id,
        name=name,
        prefix=token[:10],
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
    )
    uow.users.add_api_key(key, digest(secret_key, token))
    return key, token


def revoke_api_key(uow: UnitOfWork, user_id: UUID, key_id: UUID, now: datetime) -> None:
    if not uow.users.revoke_api_key(user_id, key_id, now):
        raise NotFound(f"no active API key {key_id} for user {user_id}")


def ensure_dev_admin(uow: UnitOfWork, now: datetime) -> tuple[str, str] | None:
    """Development only: with no users at all, create ``admin`` and return its password.

    Returns None when users exist (the password is only ever shown at creation).
    """
    if uow.users.count() > 0:
        return None
    password = secrets.token_urlsafe(18)
    create_user(uow, username=DEV_ADMIN, role="admin", password=password, now=now, created_by=None)
    return DEV_ADMIN, password
