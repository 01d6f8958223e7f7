"""Trusting CDS clients (CDS Hooks 2.0): the EHR's signed JWT, its JWKS, and jti replay.

Every call carries ``Authorization: Bearer <JWT>`` signed by the EHR (ES384 or RS384;
never ``none`` or HMAC), verified against the JWKS registered for its issuer: given
inline (parsed once, at start-up) or a ``jwks_url`` fetched and cached for five minutes,
fetched again at once when a token names an unknown ``kid`` (at most every 10 s, so
random kids cannot make us hammer the EHR). A ``jku`` header must equal the registered
URL; ``aud`` is the endpoint URL; ``exp``/``iat``/``jti`` are required. A ``jti`` is
claimed in the shared :class:`~triggerpath.services.feedback.ReplayStore` (the database)
so a token replayed to any worker is refused. A hook call defers that claim
(``verify(claim=False)``) to fold it into the one statement that also looks up its
``hookInstance`` (:meth:`~triggerpath.services.feedback.WriteBehind.admit`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import orjson
from fastapi.responses import Response

from triggerpath.services.feedback import ReplayStore

PROBLEM_JSON = "application/problem+json"
ALGORITHMS = ("ES384", "RS384")
FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
JWKS_TTL_SECONDS = 300.0
JWKS_REFRESH_MIN_SECONDS = 10.0
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
_JWS = jwt.api_jws.PyJWS(algorithms=list(ALGORITHMS))


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """RFC 9457 problem details (401 with the Bearer challenge)."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


class HookError(Exception):
    """A refusal with its HTTP answer ready."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.response = problem(status, title, detail, **extra)


def refused(detail: str) -> HookError:
    return HookError(401, "Authentication failed", detail)


@dataclass(frozen=True)
class TrustedClient:
    """An EHR allowed to call: its issuer and where its public keys are."""

    issuer: str
    jwks: Mapping[str, Any] | None = None
    jwks_url: str | None = None


@dataclass(frozen=True)
class JtiClaim:
    """A verified token's ``jti``, to be claimed in the shared store (once, any worker)."""

    issuer: str
    jti: str
    expires_at: datetime
    at: datetime


@dataclass(frozen=True)
class Caller:
    issuer: str
    subject: str | None = None
    tenant: str | None = None
    verified: bool = True
    #: set by ``verify(claim=False)``: the caller must claim it before answering
    unclaimed: JtiClaim | None = None


@dataclass(frozen=True)
class AuthPolicy:
    """What the authenticator accepts (from :class:`~.cds_hooks.CdsConfig`)."""

    development: bool
    trusted_clients: Mapping[str, TrustedClient]
    algorithms: tuple[str, ...] = ALGORITHMS
    leeway_seconds: int = 60
    fetch_timeout_seconds: float = 2.0


class ClientAuthenticator:
    """Verifies the EHR's signed JWT against its registered JWKS (CDS Hooks 2.0)."""

    def __init__(
        self,
        policy: AuthPolicy,
        http: Callable[[], httpx.AsyncClient],
        replay: ReplayStore,
        clock: Callable[[], float] = time.time,
        offload: Callable[[Callable[[], bool]], Awaitable[bool]] | None = None,
    ) -> None:
        self.policy = policy
        self._offload = offload or asyncio.to_thread
        self._http = http
        self._replay = replay
        self._clock = clock
        self._fetched: dict[str, tuple[float, jwt.PyJWKSet]] = {}
        self._inline = {
            c.issuer: jwt.PyJWKSet.from_dict(dict(c.jwks))
            for c in policy.trusted_clients.values()
            if c.jwks is not None
        }  # parsed once: no key parsing per request
        self._seen: dict[tuple[str, str], float] = {}
        self._next_purge = 0.0
        self._lock = threading.Lock()

    async def verify(
        self, authorization: str | None, audiences: Sequence[str], *, claim: bool = True
    ) -> Caller:
        """The verified caller, or :class:`HookError` (401) saying what is wrong.

        ``claim=False``: the jti is checked against this worker's memory only and handed
        back as ``Caller.unclaimed``; the caller claims it in the shared store itself.
        """
        token = self._bearer(authorization)
        if token is None:
            return Caller(issuer="development", verified=False)
        try:  # the one parse: header, claims, signature (checked in _decode)
            parts = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
            header, unverified = parts["header"], parts["payload"]
        except jwt.PyJWTError as exc:
            raise refused(f"not a JWT: {exc}") from None
        raw_iss = unverified.get("iss")
        iss = raw_iss if isinstance(raw_iss, str) else ""
        client = self.policy.trusted_clients.get(iss) if iss else None
        if client is None:
            if self.policy.development:
                return Caller(issuer=iss or "unknown", verified=False)
            raise refused(f"issuer {raw_iss!r} is not registered")
        alg = self._check_header(header, client)
        key = await self._key(client, str(header["kid"]))
        claims = self._decode(token, parts, key, alg, audiences)
        self._check_times(claims)
        ticket = self._remember_jti(iss, claims)
        if claim:
            await self.claim(ticket)
        return Caller(
            issuer=iss,
            subject=claims.get("sub"),
            tenant=claims.get("tenant"),
            unclaimed=None if claim else ticket,
        )

    def _bearer(self, authorization: str | None) -> str | None:
        """The token of ``Authorization: Bearer``; None for an unsigned development call."""
        if not authorization:
            if self.policy.development:
                return None
            raise HookError(401, "Authentication required", "send 'Authorization: Bearer <JWT>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise refused("expected a Bearer token")
        return token

    def _check_header(self, header: Mapping[str, Any], client: TrustedClient) -> str:
        """The algorithm, after checking alg, typ, kid and jku."""
        alg = header.get("alg")
        algorithms = self.policy.algorithms
        if alg not in algorithms or alg in FORBIDDEN_ALGORITHMS:
            raise refused(f"alg {alg!r} not accepted (use {' or '.join(algorithms)})")
        if str(header.get("typ", "")).upper() != "JWT" or not header.get("kid"):
            raise refused("JWT header needs typ 'JWT' and a kid")
        jku = header.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise refused("jku is not the registered JWKS URL")
        return str(alg)

    async def _key(self, client: TrustedClient, kid: str) -> jwt.PyJWK:
        """The signing key: inline, cached, or (unknown kid) fetched again."""
        for refresh in (False, True):
            keyset = self._inline.get(client.issuer) or await self._remote(client, refresh)
            key = next((k for k in keyset.keys if k.key_id == kid), None)
            if key is not None or client.jwks is not None:
                break
        if key is None:
            raise refused(f"no key {kid!r} for {client.issuer}")
        return key

    async def _remote(self, client: TrustedClient, refresh: bool) -> jwt.PyJWKSet:
        """The registered ``jwks_url``'s keys, cached; a refresh at most every 10 s."""
        assert client.jwks_url is not None
        cached = self._fetched.get(client.jwks_url)
        age = self._clock() - cached[0] if cached else None
        if cached and age is not None:
            fresh = age < JWKS_TTL_SECONDS and not refresh
            if fresh or (refresh and age < JWKS_REFRESH_MIN_SECONDS):
                return cached[1]
        try:
            timeout = self.policy.fetch_timeout_seconds
            resp = await self._http().get(client.jwks_url, timeout=timeout)
            resp.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(resp.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            raise refused(f"JWKS not available: {exc}") from None
        self._fetched[client.jwks_url] = (self._clock(), keyset)
        return keyset

    def _decode(
        self,
        token: str,
        parts: Mapping[str, Any],
        key: jwt.PyJWK,
        alg: str,
        audiences: Sequence[str],
    ) -> dict[str, Any]:
        """Signature, required claims and audience of the token parsed once (``parts``
        from PyJWT's unverified decode; times: see ``_check_times``). The signature is
        checked by PyJWT's own algorithm over the bytes as sent, as ``jwt.decode`` does,
        without decoding the token a second time."""
        algorithm = _JWS.get_algorithm_by_name(alg)
        signing_input = token.rpartition(".")[0].encode()
        try:
            prepared = algorithm.prepare_key(key.key)  # a key of another type is refused
            valid = algorithm.verify(signing_input, prepared, parts["signature"])
        except (jwt.PyJWTError, TypeError, ValueError):
            valid = False
        if not valid:
            raise refused("JWT rejected: Signature verification failed")
        claims: dict[str, Any] = parts["payload"]
        missing = [c for c in REQUIRED_CLAIMS if c not in claims]
        if missing:
            raise refused(f"JWT rejected: Token is missing the {missing[0]!r} claim")
        aud = claims["aud"]
        given = [aud] if isinstance(aud, str) else aud
        if not isinstance(given, list) or not any(a in audiences for a in given):
            raise refused("JWT rejected: Audience doesn't match")
        return claims

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        """exp, iat and nbf against the injected clock, with the leeway."""
        now, leeway = self._clock(), self.policy.leeway_seconds
        try:
            exp, iat = float(claims["exp"]), float(claims["iat"])
            nbf = float(claims.get("nbf", iat))
        except (TypeError, ValueError):
            raise refused("JWT rejected: bad exp/iat") from None
        if exp < now - leeway:
            raise refused("JWT rejected: the token has expired")
        if iat > now + leeway or nbf > now + leeway:
            raise refused("JWT rejected: issued in the future")

    def _remember_jti(self, iss: str, claims: Mapping[str, Any]) -> JtiClaim:
        """Refuse a jti this worker has seen (no database needed); remember it."""
        now = self._clock()
        key = (iss, str(claims["jti"]))
        keep_until = float(claims["exp"]) + self.policy.leeway_seconds
        with self._lock:
            if now >= self._next_purge:  # every 10 s, not per request
                self._next_purge = now + 10
                for k in [k for k, exp in self._seen.items() if exp < now]:
                    del self._seen[k]
            if key in self._seen:
                raise replayed()
            self._seen[key] = keep_until
        return JtiClaim(
            iss, key[1], datetime.fromtimestamp(keep_until, UTC), datetime.fromtimestamp(now, UTC)
        )

    async def claim(self, ticket: JtiClaim) -> None:
        """Claim the jti in the shared store (in a thread: the event loop serves other
        calls while the database answers); refuse a replay seen by another worker."""
        t = ticket
        claimed = await self._offload(
            lambda: self._replay.claim(t.issuer, t.jti, t.expires_at, t.at)
        )
        if not claimed:
            raise replayed()


def replayed() -> HookError:
    return refused("JWT already used (jti replay)")
