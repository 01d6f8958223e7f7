"""Authentication and authorisation.

- People: local users with Argon2id password hashes (argon2-cffi defaults, RFC 9106
  low-memory profile); a login opens a server-side session whose random token travels in
  a ``Secure; HttpOnly; SameSite=Strict`` cookie. Only an HMAC digest of the token is
  stored. Unsafe requests made with the cookie must echo the CSRF token handed out at
  login in the ``X-CSRF-Token`` header.
- Systems: bearer tokens, either API keys (``tp_...``, stored as HMAC digests, shown
  once) or short-lived HS256 JWTs from ``POST /api/v1/auth/token``. The role is always
  read from the database, so a demotion or deactivation takes effect at once.
- Every session and JWT carries the user's ``token_version`` at issue; logout, a
  password change or reset, a role change and deactivation bump it, which ends every
  session and token issued before, on every device. API keys (system credentials,
  shown once) are revoked individually by an admin; deactivation and a pending reset
  stop them at once. Sessions also end after an idle period
  and at an absolute lifetime.
- Login is throttled per account (stored, so it holds across workers and restarts) and
  per client address (in memory): after a few failures each further attempt waits an
  exponentially growing delay (HTTP 429 with ``Retry-After``). At most a few Argon2
  hashes (64 MiB each) run at once; a burst beyond that waits briefly, then gets 503.
- Accounts made by development tooling (``dev_only``) are refused outside development.

Roles (what each may do is the table :data:`PERMISSIONS`):

- ``clinician``: every clinical action; signs their assessments, plans and procedure notes
- ``nurse``: reads; records sessions and outcomes; signs only the procedure notes of
  sessions they performed (never an assessment or a plan)
- ``viewer``: reads only
- ``admin``: users, API keys, clinic policy and the audit trail; no patient data
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


class Throttled(TriggerPathError):
    """Too many failed sign-ins: try again after ``retry_after`` seconds (HTTP 429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


class Busy(TriggerPathError):
    """Every password-hash slot is taken: try again shortly (HTTP 503)."""

    retry_after = 1


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
    # signatures (issue 17 §4): a clinician signs their assessments and plans; a session's
    # performer (clinician or nurse) signs its procedure note. Who exactly: kernel rule.
    table["assessment.sign"] = CLINICIAN
    table["plan.sign"] = CLINICIAN
    table["session.sign"] = RECORDERS
    table["assessment.addendum"] = CLINICIAN
    table["plan.addendum"] = CLINICIAN
    table["session.addendum"] = RECORDERS
    table["worklist.read"] = READERS
    # the performer named on a session recorded for them attests it (kernel rule: only them)
    table["session.attest"] = RECORDERS
    table["assessment.reassess"] = READERS
    table["episode.course"] = READERS
    # the episode as a FHIR R4 Bundle for the EHR (notes and summary as PDF): a read
    table["episode.export"] = READERS
    for name in ("assess", "dose", "plan", "course", "score"):
        table[f"compute.{name}"] = READERS
    for name in (
        "create",
        "list",
        "read",
        "update",
        "reset_password",
        "api_key.create",
        "api_key.revoke",
    ):
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


class HashGate:
    """At most ``slots`` password hashes at once (each costs 64 MiB of memory)."""

    def __init__(self, slots: int = 4, wait_seconds: float = 5.0) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self.wait_seconds = wait_seconds

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise Busy("the service is busy checking passwords; try again shortly")
        try:
            yield
        finally:
            self._slots.release()


DEFAULT_GATE = HashGate()


def hash_password(password: str, gate: HashGate = DEFAULT_GATE) -> str:
    with gate.slot():
        return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str, gate: HashGate = DEFAULT_GATE) -> bool:
    with gate.slot():
        try:
            ok = _hasher.verify(stored_hash or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return ok and stored_hash is not None


# --------------------------------------------------------------------------- throttling
#: Failures allowed before the back-off starts, per account and per client address.
ACCOUNT_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20
BACKOFF_BASE_SECONDS = 15
BACKOFF_MAX_SECONDS = 15 * 60


def backoff_seconds(failures: int, free: int) -> int:
    """The wait after ``failures`` consecutive failures: 0, then 15 s doubling to 15 min."""
    if failures < free:
        return 0
    return int(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(failures - free, 16)))


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


@dataclass
class AddressThrottle:
    """Failed sign-ins per client address, in memory, bounded to ``capacity`` addresses."""

    capacity: int = 10_000
    free_failures: int = ADDRESS_FREE_FAILURES
    _seen: OrderedDict[str, tuple[int, datetime | None]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, address: str, now: datetime) -> None:
        with self._lock:
            _, until = self._seen.get(address, (0, None))
        if until is not None and until > now:
            raise Throttled(_retry_after(until, now))

    def failed(self, address: str, now: datetime) -> None:
        with self._lock:
            count, _ = self._seen.pop(address, (0, None))
            count += 1
            wait = backoff_seconds(count, self.free_failures)
            self._seen[address] = (count, now + timedelta(seconds=wait) if wait else None)
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)


@dataclass
class LoginGuard:
    """What every sign-in passes through: address throttle and hash slots."""

    addresses: AddressThrottle = field(default_factory=AddressThrottle)
    gate: HashGate = field(default_factory=HashGate)
    refuse_dev_only: bool = False


# --------------------------------------------------------------------------- tokens
API_KEY_PREFIX = "tp_"
SESSION_COOKIE = "tp_session"
CSRF_HEADER = "X-CSRF-Token"
JWT_ISSUER = "triggerpath"
JWT_AUDIENCE = "triggerpath-api"
#: Admin password resets expire after this long.
RESET_HOURS = 24


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
        "ver": user.token_version,
    }
    return jwt.encode(claims, signing_key, algorithm="HS256")


def jwt_claims(signing_key: str, token: str, now: datetime) -> tuple[UUID, int]:
    """(subject, token version) of a valid token, or ``Unauthenticated``."""
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
        return UUID(str(claims["sub"])), int(claims.get("ver", -1))
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Unauthenticated("invalid or expired token") from None


def jwt_subject(signing_key: str, token: str, now: datetime) -> UUID:
    return jwt_claims(signing_key, token, now)[0]


# --------------------------------------------------------------------------- use cases
def _actor(user: User | None, version: int | None = None, *, strict: bool = False) -> Actor:
    """The actor for ``user``, if the credential (issued under ``version``) still holds."""
    if user is None or not user.active or user.reset_pending:
        raise Unauthenticated("invalid credentials")
    if version is not None and version != user.token_version:
        raise Unauthenticated("credentials ended (signed out, password or role changed)")
    if strict and user.dev_only:
        raise Unauthenticated("development account: disabled outside development")
    return Actor(username=user.username, role=user.role, user_id=user.id)


def _refuse_if_locked(user: User | None, now: datetime) -> None:
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise Throttled(_retry_after(user.locked_until, now))


def _record_failure(uow: UnitOfWork, user: User | None, now: datetime) -> None:
    if user is None:
        return
    failures = user.failed_logins + 1
    wait = backoff_seconds(failures, ACCOUNT_FREE_FAILURES)
    until = now + timedelta(seconds=wait) if wait else None
    uow.users.update(user.id, failed_logins=failures, locked_until=until)


def attempt_login(
    uow: UnitOfWork, guard: LoginGuard, username: str, password: str, address: str, now: datetime
) -> User | None:
    """The user with these credentials, or None (the failure is counted; commit it).

    Raises ``Throttled`` while the account or the address waits out its back-off (no
    hash is computed then), ``Busy`` when no hash slot frees up in time.
    """
    guard.addresses.check(address, now)
    user = uow.users.by_username(username)
    _refuse_if_locked(user, now)
    ok = verify_password(user.password_hash if user else None, password, guard.gate)
    usable = user is not None and user.active and not (guard.refuse_dev_only and user.dev_only)
    if not ok or user is None or not usable:
        guard.addresses.failed(address, now)
        _record_failure(uow, user, now)
        return None
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        values["password_hash"] = hash_password(password, guard.gate)
    uow.users.update(user.id, **values)
    return user


class WrongPassword(Forbidden):
    """The password re-entered to confirm an action (a signature) is not the user's (403)."""


@dataclass(frozen=True)
class Reauthenticated:
    """Proof that ``username`` re-entered their password at ``at`` (made only here)."""

    username: str
    at: datetime


def confirm_password(
    uow: UnitOfWork, guard: LoginGuard, actor: Actor, password: str, now: datetime
) -> Reauthenticated | None:
    """The proof that ``actor`` re-entered their own password, or None (failure counted).

    The same account throttle as a sign-in: failures add to ``failed_logins`` and past the
    free ones the account waits out the back-off (``Throttled``, no hash computed), so a
    signature prompt cannot be used to guess a password faster than the login form. Commit
    the unit of work whatever the answer.
    """
    user = uow.users.by_username(actor.username)
    _refuse_if_locked(user, now)
    ok = verify_password(user.password_hash if user else None, password, guard.gate)
    if not ok or user is None or not user.active:
        _record_failure(uow, user, now)
        return None
    if user.failed_logins or user.locked_until is not None:
        uow.users.update(user.id, failed_logins=0, locked_until=None)
    return Reauthenticated(user.username, now)


def check_password(uow: UnitOfWork, username: str, password: str) -> User:
    """The user with these credentials, or ``Unauthenticated`` (no throttling; CLI use)."""
    user = uow.users.by_username(username)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        raise Unauthenticated("invalid username or password")
    return user


def end_credentials(uow: UnitOfWork, user_id: UUID) -> None:
    """End every session and JWT the user holds (bump the token version)."""
    uow.users.bump_token_version(user_id)


def open_session(
    uow: UnitOfWork, secret_key: str, user: User, now: datetime, hours: float
) -> tuple[str, datetime]:
    """A new browser session for ``user``: (cookie token, absolute expiry)."""
    token = new_token()
    expires = now + timedelta(hours=hours)
    uow.users.add_session(
        uuid4(), user.id, digest(secret_key, token), now, expires, user.token_version
    )
    return token, expires


def close_session(uow: UnitOfWork, secret_key: str, token: str, now: datetime) -> None:
    uow.users.revoke_session(digest(secret_key, token), now)


def actor_from_session(
    uow: UnitOfWork,
    secret_key: str,
    token: str,
    now: datetime,
    idle: timedelta | None = None,
    *,
    strict: bool = False,
) -> Actor:
    """The session's actor; a session idle for longer than ``idle`` is ended."""
    key = digest(secret_key, token)
    found = uow.users.live_session(key, now)
    if found is None:
        raise Unauthenticated("session expired or signed out")
    user_id, version, last_seen = found
    if idle is not None and now - last_seen > idle:
        uow.users.revoke_session(key, now)
        raise Unauthenticated("session ended after inactivity; sign in again")
    actor = _actor(uow.users.get(user_id), version, strict=strict)
    if now - last_seen > timedelta(seconds=30):
        uow.users.touch_session(key, now)
    return actor


def actor_from_api_key(
    uow: UnitOfWork, secret_key: str, token: str, now: datetime, *, strict: bool = False
) -> Actor:
    key_digest = digest(secret_key, token)
    key = uow.users.api_key_by_digest(key_digest)
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("invalid API key")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated("expired API key")
    # API keys are system credentials with their own lifecycle (revoked by an admin);
    # deactivation and a pending reset still stop them at once (see _actor)
    return _actor(uow.users.get(key.user_id), strict=strict)


def actor_from_jwt(
    uow: UnitOfWork, signing_key: str, token: str, now: datetime, *, strict: bool = False
) -> Actor:
    subject, version = jwt_claims(signing_key, token, now)
    return _actor(uow.users.get(subject), version, strict=strict)


def roles_allowed(action: str) -> Iterable[Role]:
    return sorted(PERMISSIONS.get(action, frozenset()))
