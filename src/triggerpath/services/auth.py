"""Authentication and authorisation.

- People: local users with Argon2id password hashes (argon2-cffi defaults, RFC 9106
  low-memory profile); a login opens a server-side session whose random token travels in
  a ``Secure; HttpOnly; SameSite=Strict`` cookie. Only an HMAC digest of the token is
  stored. Unsafe requests made with the cookie must echo the CSRF token handed out at
  login in the ``X-CSRF-Token`` header.
- Systems: bearer tokens, either API keys (``tp_...``, stored as HMAC digests, shown
  once) or short-lived HS256 JWTs from ``POST /api/v1/auth/token``. The role is always
  read from the database, so a demotion or deactivation takes effect at once.

Roles (what each may do is the table :data:`PERMISSIONS`):

- ``clinician``: every clinical action; signs assessments and plans
- ``nurse``: reads; records sessions and outcomes; cannot sign
- ``viewer``: reads only
- ``admin``: users, API keys, clinic policy and the audit trail; no patient data
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from triggerpath.errors import TriggerPathError
from triggerpath.services.model import KINDS, ROLES, Actor, Role, User
from triggerpath.services.uow import UnitOfWork


class Unauthenticated(TriggerPathError):
    """No valid credentials came with the request (HTTP 401)."""


class Forbidden(TriggerPathError):
    """The actor's role does not allow the action (HTTP 403)."""


# --------------------------------------------------------------------------- permissions
READERS: frozenset[Role] = frozenset({"clinician", "nurse", "viewer"})
CLINICIAN: frozenset[Role] = frozenset({"clinician"})
RECORDERS: frozenset[Role] = frozenset({"clinician", "nurse"})
ADMIN: frozenset[Role] = frozenset({"admin"})
EVERYONE: frozenset[Role] = frozenset(ROLES)

#: Kinds a nurse may write (sessions performed and outcome measurements).
NURSE_WRITES = frozenset({"session", "outcome"})


def _permissions() -> dict[str, frozenset[Role]]:
    table: dict[str, frozenset[Role]] = {}
    for kind in KINDS:
        for verb in ("list", "read", "history"):
            table[f"{kind}.{verb}"] = READERS
        writers = RECORDERS if kind in NURSE_WRITES else CLINICIAN
        for verb in ("create", "correct", "retract"):
            table[f"{kind}.{verb}"] = writers
    table["assessment.sign"] = CLINICIAN
    table["plan.sign"] = CLINICIAN
    # the performer named on a session recorded for them attests it (kernel rule: only them)
    table["session.attest"] = RECORDERS
    table["assessment.reassess"] = READERS
    table["episode.course"] = READERS
    for name in ("assess", "dose", "plan", "course", "score"):
        table[f"compute.{name}"] = READERS
    for name in ("create", "list", "read", "update", "api_key.create", "api_key.revoke"):
        table[f"user.{name}"] = ADMIN
    table["audit.list"] = ADMIN
    table["policy.read"] = EVERYONE
    table["policy.update"] = ADMIN
    return table


#: action -> roles allowed. Unknown actions are refused (fail closed).
PERMISSIONS: dict[str, frozenset[Role]] = _permissions()


def allowed(role: Role, action: str) -> bool:
    return role in PERMISSIONS.get(action, frozenset())


def authorise(actor: Actor, action: str) -> None:
    if not allowed(actor.role, action):
        raise Forbidden(f"role {actor.role!r} may not perform {action!r}")


# --------------------------------------------------------------------------- passwords
_hasher = PasswordHasher()
#: Verified against when the user does not exist, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + "x" * 16)
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --------------------------------------------------------------------------- tokens
API_KEY_PREFIX = "tp_"
SESSION_COOKIE = "tp_session"
CSRF_HEADER = "X-CSRF-Token"
JWT_ISSUER = "triggerpath"
JWT_AUDIENCE = "triggerpath-api"


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret_key: str, token: str) -> str:
    """What is stored for a token: HMAC-SHA256 under the service's secret key."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def csrf_token(secret_key: str, session_token: str) -> str:
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), "sha256").hexdigest()


def csrf_ok(secret_key: str, session_token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(
        csrf_token(secret_key, session_token), presented
    )


def issue_jwt(signing_key: str, user: User, now: datetime, minutes: int) -> str:
    claims = {
        "sub": str(user.id),
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=minutes)).timestamp()),
        "jti": uuid4().hex,
    }
    return jwt.encode(claims, signing_key, algorithm="HS256")


def jwt_subject(signing_key: str, token: str, now: datetime) -> UUID:
    try:
        claims = jwt.decode(
            token,
            signing_key,
            algorithms=["HS256"],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"], "verify_iat": False},
            leeway=30,
        )
        return UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError):
        raise Unauthenticated("invalid or expired token") from None


# --------------------------------------------------------------------------- use cases
def _actor(user: User | None) -> Actor:
    if user is None or not user.active:
        raise Unauthenticated("invalid credentials")
    return Actor(username=user.username, role=user.role, user_id=user.id)


def check_password(uow: UnitOfWork, username: str, password: str) -> User:
    """The user with these credentials, or ``Unauthenticated`` (same cost either way)."""
    user = uow.users.by_username(username)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        raise Unauthenticated("invalid username or password")
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        uow.users.update(user.id, password_hash=hash_password(password))
    return user


def open_session(
    uow: UnitOfWork, secret_key: str, user: User, now: datetime, hours: float
) -> tuple[str, datetime]:
    """A new browser session for ``user``: (cookie token, expiry)."""
    token = new_token()
    expires = now + timedelta(hours=hours)
    uow.users.add_session(uuid4(), user.id, digest(secret_key, token), now, expires)
    return token, expires


def close_session(uow: UnitOfWork, secret_key: str, token: str, now: datetime) -> None:
    uow.users.revoke_session(digest(secret_key, token), now)


def actor_from_session(uow: UnitOfWork, secret_key: str, token: str, now: datetime) -> Actor:
    user_id = uow.users.session_by_digest(digest(secret_key, token), now)
    return _actor(uow.users.get(user_id) if user_id else None)


def actor_from_api_key(uow: UnitOfWork, secret_key: str, token: str, now: datetime) -> Actor:
    key = uow.users.api_key_by_digest(digest(secret_key, token))
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid API key")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated("expired API key")
    return _actor(uow.users.get(key.user_id))


def actor_from_jwt(uow: UnitOfWork, signing_key: str, token: str, now: datetime) -> Actor:
    return _actor(uow.users.get(jwt_subject(signing_key, token, now)))


def roles_allowed(action: str) -> Iterable[Role]:
    return sorted(PERMISSIONS.get(action, frozenset()))
