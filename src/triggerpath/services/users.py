"""User administration: create users, change role or status, issue and revoke API keys.

Shown once, stored never: passwords are kept as Argon2 hashes and API keys as HMAC
digests; the plain values are returned to the caller exactly once.

Separation of duties: no one changes their own role or deactivates themselves, the last
active admin cannot be demoted or deactivated, and an admin never learns or sets another
user's password. An admin *reset* clears the password and issues a one-time token that
expires (:data:`~triggerpath.services.auth.RESET_HOURS`); until its user chooses a new
password with it, the account cannot act. Role changes, deactivation and resets end
every credential the user held.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from triggerpath.errors import Conflict, InvalidInput, NotFound
from triggerpath.services import auth
from triggerpath.services.auth import (
    API_KEY_PREFIX,
    digest,
    hash_password,
    new_token,
)
from triggerpath.services.model import ROLES, Actor, ApiKey, Role, User, Window
from triggerpath.services.passwords import check_new_password
from triggerpath.services.uow import UnitOfWork

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
DEV_ADMIN = "admin"


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise InvalidInput.single(
            "username", "2-64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    return username


def check_password(password: str, username: str | None = None) -> str:
    """The password rule (:mod:`triggerpath.services.passwords`)."""
    return check_new_password(password, username)


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
    dev_only: bool = False,
) -> User:
    """A new active user; ``password=None`` makes a system account (API keys only).

    ``dev_only`` marks accounts made by development tooling (refused in production).
    """
    check_username(username)
    valid_role = check_role(role)
    if password is not None:
        check_password(password, username)
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
        dev_only=dev_only,
    )
    uow.users.add(user)
    return user


def get_user(uow: UnitOfWork, user_id: UUID) -> User:
    user = uow.users.get(user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _check_separation(
    uow: UnitOfWork, actor: Actor, target: User, role: Role | None, active: bool | None
) -> None:
    """No self-service role or status change; never leave the clinic without an admin."""
    own = actor.user_id == target.id or actor.username == target.username
    if own and role is not None and role != target.role:
        raise auth.Forbidden("no one may change their own role")
    if own and active is False:
        raise auth.Forbidden("no one may deactivate themselves")
    loses_admin = target.role == "admin" and target.active
    loses_admin = loses_admin and (active is False or (role is not None and role != "admin"))
    if loses_admin and uow.users.active_admins() <= 1:
        raise Conflict("the last active admin cannot be demoted or deactivated")


def update_user(
    uow: UnitOfWork,
    user_id: UUID,
    *,
    actor: Actor,
    role: str | None = None,
    active: bool | None = None,
) -> User:
    """Change a user's role or status; either change ends the user's credentials."""
    target = get_user(uow, user_id)  # NotFound first
    new_role = check_role(role) if role is not None else None
    _check_separation(uow, actor, target, new_role, active)
    values: dict[str, object] = {}
    if new_role is not None and new_role != target.role:
        values["role"] = new_role
    if active is not None and active != target.active:
        values["active"] = active
    if values:
        uow.users.update(user_id, **values)
        auth.end_credentials(uow, user_id)
    return get_user(uow, user_id)


def reset_password(
    uow: UnitOfWork, secret_key: str, actor: Actor, user_id: UUID, now: datetime
) -> tuple[User, str, datetime]:
    """Clear the user's password and issue a one-time reset token: (user, token, expiry).

    The admin learns only the token, never a password; the account cannot act until
    its user chooses a password with the token.
    """
    target = get_user(uow, user_id)
    if actor.user_id == target.id:
        raise auth.Forbidden("change your own password with POST /api/v1/auth/password")
    if target.password_hash is None and not target.reset_pending:
        raise Conflict(f"user {target.username!r} is a system account (API keys only)")
    token = new_token("tpr_")
    expires = now + timedelta(hours=auth.RESET_HOURS)
    uow.users.update(
        user_id,
        password_hash=None,
        reset_digest=digest(secret_key, token),
        reset_expires_at=expires,
        failed_logins=0,
        locked_until=None,
    )
    auth.end_credentials(uow, user_id)
    return get_user(uow, user_id), token, expires


def complete_reset(
    uow: UnitOfWork, secret_key: str, token: str, new_password: str, now: datetime
) -> User:
    """Set the password chosen by the holder of a reset token (used once)."""
    user = uow.users.by_reset_digest(digest(secret_key, token), now)
    if user is None or not user.active:
        raise auth.Unauthenticated("invalid or expired reset token")
    check_new_password(new_password, user.username, "new_password")
    uow.users.update(
        user.id,
        password_hash=hash_password(new_password),
        reset_digest=None,
        reset_expires_at=None,
    )
    auth.end_credentials(uow, user.id)
    return get_user(uow, user.id)


def change_password(
    uow: UnitOfWork,
    guard: auth.LoginGuard,
    actor: Actor,
    current_password: str,
    new_password: str,
    address: str,
    now: datetime,
) -> User | None:
    """Self-service change; None when ``current_password`` is wrong (commit the count)."""
    if actor.user_id is None:
        raise auth.Forbidden("only a signed-in user can change their password")
    user = get_user(uow, actor.user_id)
    checked = auth.attempt_login(uow, guard, user.username, current_password, address, now)
    if checked is None:
        return None
    check_new_password(new_password, user.username, "new_password")
    if new_password == current_password:
        raise InvalidInput.single("new_password", "must differ from the current password")
    uow.users.update(user.id, password_hash=hash_password(new_password, guard.gate))
    auth.end_credentials(uow, user.id)
    return get_user(uow, user.id)


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


def _create_dev_admin(uow: UnitOfWork, password: str, now: datetime) -> None:
    """The development ``admin``: refused outside development (issue 14 §8)."""
    create_user(
        uow,
        username=DEV_ADMIN,
        role="admin",
        password=password,
        now=now,
        created_by=None,
        dev_only=True,
    )


def ensure_dev_admin(uow: UnitOfWork, now: datetime) -> tuple[str, str] | None:
    """Development only: with no users at all, create ``admin`` and return its password.

    Returns None when users exist (the password is only ever shown at creation).
    """
    if uow.users.count() > 0:
        return None
    password = secrets.token_urlsafe(18)
    _create_dev_admin(uow, password, now)
    return DEV_ADMIN, password


def reset_dev_admin(uow: UnitOfWork, now: datetime) -> str:
    """Development only: create ``admin`` or give it a new random password (and the admin
    role, active, every old credential ended); return the password."""
    password = secrets.token_urlsafe(12)
    existing = uow.users.by_username(DEV_ADMIN)
    if existing is None:
        _create_dev_admin(uow, password, now)
    else:  # the local operator resets the development admin
        uow.users.update(
            existing.id, role="admin", active=True, password_hash=auth.hash_password(password)
        )
        auth.end_credentials(uow, existing.id)
    return password
