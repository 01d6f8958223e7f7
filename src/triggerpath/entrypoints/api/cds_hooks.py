"""CDS Hooks 2.0 service: discovery, the three TPI services, and feedback.

Mount it with one line: ``app.include_router(cds_router(settings, feedback_store))``.

- ``GET  /cds-services`` — discovery: ``patient-view``, ``order-select`` and
  ``order-sign``, each with its prefetch templates (built from the value sets).
- ``POST /cds-services/{id}`` — the hook call. Prefetched data is used when sent;
  missing keys are fetched from ``fhirServer`` with the ``fhirAuthorization``
  bearer token within ``cds_fhir_timeout_seconds``. A source too slow gives an
  explanatory card (never a hang); required data that cannot be had (no prefetch
  and no server, or the server refuses) gives HTTP 412 as the spec says.
- ``POST /cds-services/{id}/feedback`` — stores ``accepted``/``overridden`` with
  the override reason, linked to the card TriggerPath issued (and its trace).

Authentication (spec "Trusting CDS Clients"): every call carries
``Authorization: Bearer <JWT>`` signed by the EHR (ES384 or RS384; never ``none``
or HMAC), verified against the JWKS registered for its issuer (inline, or a
``jwks_url`` fetched and cached; a ``jku`` header must equal the registered URL),
with ``aud`` = the endpoint URL, ``exp``/``iat``/``jti`` required and ``jti``
not reused. ``TRIGGERPATH_ENV=development`` allows unauthenticated calls.

Settings read from the object given (attribute, else environment variable):
``env`` (``TRIGGERPATH_ENV``), ``cds_fhir_timeout_seconds`` (default 2.0),
``cds_trusted_clients`` (JSON: ``{"<iss>": {"jwks_url": ...} | {"jwks": {...}}}``),
``cds_public_base_url`` (the ``aud`` base; default the request's own URL),
``web_base_url`` (links to the web view; default the request's base URL) and
``cds_fhir_server_allowlist`` (URL prefixes a ``fhirServer`` must start with).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from triggerpath.adapters.fhir_r4.read import (
    PatientSnapshot,
    bundle_resources,
    snapshot_from_resources,
)
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.loader import Knowledge, load_knowledge
from triggerpath.services.cds import (
    HOOKS,
    CdsOptions,
    Evaluation,
    order_hook,
    patient_view,
    source_unavailable,
)
from triggerpath.services.feedback import (
    FeedbackRecord,
    FeedbackStore,
    InMemoryFeedbackStore,
    IssuedCard,
)

PROBLEM_JSON = "application/problem+json"
ALGORITHMS = ("ES384", "RS384")
FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
MAX_PAGES = 10


# --------------------------------------------------------------------------- responses
class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


class HookError(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.response = problem(status, title, detail, **extra)


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class TrustedClient:
    """An EHR allowed to call: its issuer and where its public keys are."""

    issuer: str
    jwks: Mapping[str, Any] | None = None
    jwks_url: str | None = None


@dataclass(frozen=True)
class CdsConfig:
    development: bool = False
    fhir_timeout_seconds: float = 2.0
    trusted_clients: Mapping[str, TrustedClient] = field(default_factory=dict)
    public_base_url: str | None = None
    web_base_url: str | None = None
    fhir_server_allowlist: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ALGORITHMS
    leeway_seconds: int = 60

    @classmethod
    def from_settings(cls, settings: object | None) -> CdsConfig:
        """Read the CDS settings from a settings object, else the environment (at the edge)."""

        def get(name: str, default: Any = None) -> Any:
            value = getattr(settings, name, None) if settings is not None else None
            if value is None:
                value = os.environ.get(f"TRIGGERPATH_{name.upper()}")
            return default if value is None else value

        env = str(get("env", "production")).strip().lower()
        clients_raw = get("cds_trusted_clients", {})
        problems: list[FieldProblem] = []
        if isinstance(clients_raw, str):
            try:
                clients_raw = json.loads(clients_raw) if clients_raw.strip() else {}
            except json.JSONDecodeError as exc:
                raise InvalidInput.single("cds_trusted_clients", f"not JSON: {exc}") from None
        clients: dict[str, TrustedClient] = {}
        if not isinstance(clients_raw, Mapping):
            raise InvalidInput.single("cds_trusted_clients", "expected {issuer: {jwks_url|jwks}}")
        for iss, spec in clients_raw.items():
            if isinstance(spec, TrustedClient):
                clients[iss] = spec
                continue
            if not isinstance(spec, Mapping) or not (spec.get("jwks") or spec.get("jwks_url")):
                problems.append(
                    FieldProblem(f"cds_trusted_clients.{iss}", "give 'jwks' or 'jwks_url'")
                )
                continue
            url = spec.get("jwks_url")
            if url and not str(url).startswith("https://") and env != "development":
                problems.append(
                    FieldProblem(f"cds_trusted_clients.{iss}.jwks_url", "must be https")
                )
            clients[iss] = TrustedClient(iss, spec.get("jwks"), url)
        allow = get("cds_fhir_server_allowlist", ())
        if isinstance(allow, str):
            allow = tuple(a.strip() for a in allow.split(",") if a.strip())
        try:
            timeout = float(get("cds_fhir_timeout_seconds", 2.0))
        except (TypeError, ValueError):
            timeout = -1.0
        if not 0 < timeout <= 30:
            problems.append(FieldProblem("cds_fhir_timeout_seconds", "must be in (0, 30]"))
        if problems:
            raise InvalidInput(problems)
        return cls(
            development=env == "development",
            fhir_timeout_seconds=timeout,
            trusted_clients=clients,
            public_base_url=get("cds_public_base_url"),
            web_base_url=get("web_base_url"),
            fhir_server_allowlist=tuple(allow),
        )


# --------------------------------------------------------------------------- feedback store
@dataclass(frozen=True)
class Caller:
    issuer: str
    subject: str | None = None
    tenant: str | None = None
    verified: bool = True


class ClientAuthenticator:
    """Verifies the EHR's signed JWT against its registered JWKS (CDS Hooks 2.0)."""

    def __init__(
        self,
        config: CdsConfig,
        http: Callable[[], httpx.AsyncClient],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._jwks: dict[str, tuple[float, jwt.PyJWKSet]] = {}
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()  # no await inside: safe across event loops and threads

    async def _keyset(self, client: TrustedClient, refresh: bool) -> jwt.PyJWKSet:
        if client.jwks is not None:
            return jwt.PyJWKSet.from_dict(dict(client.jwks))
        assert client.jwks_url is not None
        cached = self._jwks.get(client.jwks_url)
        if cached and not refresh and self._clock() - cached[0] < 300:
            return cached[1]
        try:
            resp = await self._http().get(client.jwks_url, timeout=self.config.fhir_timeout_seconds)
            resp.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(resp.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            raise HookError(401, "Authentication failed", f"JWKS not available: {exc}") from None
        self._jwks[client.jwks_url] = (self._clock(), keyset)
        return keyset

    async def verify(self, authorization: str | None, audiences: Sequence[str]) -> Caller:
        cfg = self.config
        if not authorization:
            if cfg.development:
                return Caller(issuer="development", verified=False)
            raise HookError(401, "Authentication required", "send 'Authorization: Bearer <JWT>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HookError(401, "Authentication failed", "expected a Bearer token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise HookError(401, "Authentication failed", f"not a JWT: {exc}") from None
        raw_iss = unverified.get("iss")
        iss = raw_iss if isinstance(raw_iss, str) else ""
        client = cfg.trusted_clients.get(iss) if iss else None
        if client is None:
            if cfg.development:
                return Caller(issuer=iss or "unknown", verified=False)
            raise HookError(401, "Authentication failed", f"issuer {raw_iss!r} is not registered")
        alg = header.get("alg")
        if alg not in cfg.algorithms or alg in FORBIDDEN_ALGORITHMS:
            raise HookError(
                401,
                "Authentication failed",
                f"alg {alg!r} not accepted (use {' or '.join(cfg.algorithms)})",
            )
        if str(header.get("typ", "")).upper() != "JWT" or not header.get("kid"):
            raise HookError(401, "Authentication failed", "JWT header needs typ 'JWT' and a kid")
        jku = header.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise HookError(401, "Authentication failed", "jku is not the registered JWKS URL")
        key = None
        for refresh in (False, True):
            keyset = await self._keyset(client, refresh)
            key = next((k for k in keyset.keys if k.key_id == header["kid"]), None)
            if key is not None or client.jwks is not None:
                break
        if key is None:
            raise HookError(401, "Authentication failed", f"no key {header['kid']!r} for {iss}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(audiences),
                issuer=iss,
                leeway=cfg.leeway_seconds,
                options={
                    "require": ["iss", "aud", "exp", "iat", "jti"],
                    # times are checked below against the injected clock
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise HookError(401, "Authentication failed", f"JWT rejected: {exc}") from None
        now = self._clock()
        leeway = cfg.leeway_seconds
        try:
            exp, iat = float(claims["exp"]), float(claims["iat"])
            nbf = float(claims.get("nbf", iat))
        except (TypeError, ValueError):
            raise HookError(401, "Authentication failed", "JWT rejected: bad exp/iat") from None
        if exp < now - leeway:
            raise HookError(401, "Authentication failed", "JWT rejected: the token has expired")
        if iat > now + leeway or nbf > now + leeway:
            raise HookError(401, "Authentication failed", "JWT rejected: issued in the future")
        with self._lock:
            for k in [k for k, exp in self._seen.items() if exp < now - cfg.leeway_seconds]:
                del self._seen[k]
            jti = (iss, str(claims["jti"]))
            if jti in self._seen:
                raise HookError(401, "Authentication failed", "JWT already used (jti replay)")
            self._seen[jti] = float(claims["exp"])
        return Caller(issuer=iss, subject=claims.get("sub"), tenant=claims.get("tenant"))


# --------------------------------------------------------------------------- prefetch
@dataclass(frozen=True)
class PrefetchKey:
    key: str
    template: str
    resource_type: str
    required: bool


def prefetch_keys(kb: Knowledge) -> list[PrefetchKey]:
    """The prefetch templates; observation and procedure codes come from the value sets."""

    def codes(vs_id: str) -> str:
        return ",".join(f"{s.url}|{c.code}" for s, c in kb.valuesets.codes(vs_id))

    pid = "{{context.patientId}}"
    latest = "&_sort=-date&_count=1"
    return [
        PrefetchKey("patient", f"Patient/{pid}", "Patient", True),
        PrefetchKey(
            "conditions",
            f"Condition?patient={pid}&clinical-status=active,recurrence,relapse",
            "Condition",
            True,
        ),
        PrefetchKey(
            "medicationRequests",
            f"MedicationRequest?patient={pid}&status=active,on-hold",
            "MedicationRequest",
            True,
        ),
        PrefetchKey("allergies", f"AllergyIntolerance?patient={pid}", "AllergyIntolerance", True),
        PrefetchKey(
            "medicationStatements",
            f"MedicationStatement?patient={pid}&status=active,on-hold,intended",
            "MedicationStatement",
            False,
        ),
        PrefetchKey(
            "weight",
            f"Observation?patient={pid}&code={codes('body_weight')}{latest}",
            "Observation",
            False,
        ),
        PrefetchKey(
            "height",
            f"Observation?patient={pid}&code=http://loinc.org|8302-2{latest}",
            "Observation",
            False,
        ),
        PrefetchKey(
            "pain",
            f"Observation?patient={pid}&code={codes('pain_severity')}{latest}",
            "Observation",
            False,
        ),
        PrefetchKey(
            "pregnancy",
            f"Observation?patient={pid}&code={codes('pregnancy_status')}{latest}",
            "Observation",
            False,
        ),
        PrefetchKey(
            "tpiProcedures",
            f"Procedure?patient={pid}&code={codes('tpi_procedure')}",
            "Procedure",
            False,
        ),
        PrefetchKey(
            "anestheticAdministrations",
            f"MedicationAdministration?patient={pid}&_sort=-effective-time&_count=50",
            "MedicationAdministration",
            False,
        ),
        PrefetchKey(
            "serviceRequests",
            f"ServiceRequest?patient={pid}&status=active,on-hold",
            "ServiceRequest",
            False,
        ),
    ]


SERVICE_TEXT: dict[str, tuple[str, str]] = {
    "patient-view": (
        "TriggerPath: TPI status",
        "Trigger point injection status when a chart opens: eligible or not and why, course "
        "status, reassessment due, local anesthetic given in the last 24 hours, contraindications "
        "and bleeding-risk drugs, with statement ids.",
    ),
    "order-select": (
        "TriggerPath: TPI order check (select)",
        "Checks a trigger point injection order (CPT 20552/20553 or a local anesthetic) as it is "
        "selected: red flags, contraindications, bleeding risk, non-myofascial diagnoses with "
        "the pathway to refer to, course limits, dose limits and physical therapy alongside.",
    ),
    "order-sign": (
        "TriggerPath: TPI order check (sign)",
        "The same checks as order-select on every trigger point injection order about to be "
        "signed, each card tied to the draft orders it concerns.",
    ),
}


def _resolve_token(template: str, context: Mapping[str, Any]) -> str | None:
    out = template
    while "{{" in out:
        start = out.index("{{")
        end = out.index("}}", start)
        token = out[start + 2 : end].strip()
        value = (
            context.get(token.removeprefix("context.")) if token.startswith("context.") else None
        )
        if not isinstance(value, str) or not value:
            return None
        out = out[:start] + value + out[end + 2 :]
    return out


class SlowSource(Exception):
    pass


class Gatherer:
    """Prefetch first, then the FHIR server for what is missing, within one deadline."""

    def __init__(self, config: CdsConfig, http: Callable[[], httpx.AsyncClient]) -> None:
        self.config = config
        self._http = http

    async def _get_all(self, url: str, headers: Mapping[str, str], base: str) -> Any:
        resp = await self._http().get(url, headers=dict(headers))
        if resp.status_code == 404 and "?" not in url:
            return None
        resp.raise_for_status()
        data = resp.json()
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            return data
        pages = 1
        entries = list(data.get("entry") or [])
        nxt = _next_link(data)
        while nxt and pages < MAX_PAGES:
            if not nxt.startswith(base):
                break  # never follow a link off the client's FHIR server
            resp = await self._http().get(nxt, headers=dict(headers))
            resp.raise_for_status()
            page = resp.json()
            entries.extend(page.get("entry") or [] if isinstance(page, dict) else [])
            nxt = _next_link(page) if isinstance(page, dict) else None
            pages += 1
        return {**data, "entry": entries}

    async def gather(
        self, body: Mapping[str, Any], keys: Sequence[PrefetchKey]
    ) -> tuple[dict[str, Any], list[str]]:
        """Values by prefetch key (None = no data) and the keys that could not be had."""
        prefetch = body.get("prefetch") if isinstance(body.get("prefetch"), dict) else {}
        assert isinstance(prefetch, dict)
        got: dict[str, Any] = {}
        for k in keys:
            if k.key in prefetch:
                value = prefetch[k.key]
                if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
                    continue  # the client failed to prefetch it: fetch it ourselves
                got[k.key] = value
        todo = [k for k in keys if k.key not in got]
        server = body.get("fhirServer")
        if not todo:
            return got, []
        if not isinstance(server, str) or not server:
            return got, [k.key for k in todo]
        allow = self.config.fhir_server_allowlist
        if allow and not any(server.startswith(a) for a in allow):
            raise HookError(412, "Precondition Failed", f"fhirServer {server} is not allowed")
        context = body.get("context") if isinstance(body.get("context"), dict) else {}
        assert isinstance(context, dict)
        auth = body.get("fhirAuthorization")
        headers = {"Accept": "application/fhir+json"}
        if isinstance(auth, dict) and isinstance(auth.get("access_token"), str):
            headers["Authorization"] = f"Bearer {auth['access_token']}"
        base = server.rstrip("/") + "/"
        failed: list[str] = []

        async def one(k: PrefetchKey) -> None:
            path = _resolve_token(k.template, context)
            if path is None:
                failed.append(k.key)
                return
            try:
                got[k.key] = await self._get_all(base + path, headers, base)
            except (httpx.HTTPStatusError, httpx.TransportError, ValueError):
                failed.append(k.key)

        try:
            async with asyncio.timeout(self.config.fhir_timeout_seconds):
                await asyncio.gather(*(one(k) for k in todo))
        except TimeoutError:
            raise SlowSource(
                f"The EHR's FHIR server ({server}) did not answer within "
                f"{self.config.fhir_timeout_seconds:g} s."
            ) from None
        return got, failed


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None


def _resources(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        return bundle_resources(value, f"prefetch.{key}")
    if isinstance(value, dict) and "resourceType" in value:
        return [value]
    raise InvalidInput.single(f"prefetch.{key}", "expected a FHIR resource, a Bundle or null")


# --------------------------------------------------------------------------- the router
def _body_problems(service_id: str, body: Any) -> list[FieldProblem]:
    if not isinstance(body, dict):
        return [FieldProblem("(root)", "expected a JSON object")]
    out: list[FieldProblem] = []
    if body.get("hook") != service_id:
        out.append(FieldProblem("hook", f"this service answers the {service_id!r} hook"))
    if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
        out.append(FieldProblem("hookInstance", "required (a UUID string)"))
    context = body.get("context")
    if not isinstance(context, dict):
        return [*out, FieldProblem("context", "required (an object)")]
    if not isinstance(context.get("patientId"), str) or not context["patientId"]:
        out.append(FieldProblem("context.patientId", "required"))
    if service_id != "patient-view" and not isinstance(context.get("draftOrders"), dict):
        out.append(FieldProblem("context.draftOrders", "required (a FHIR Bundle)"))
    if service_id == "order-select":
        sel = context.get("selections")
        if not isinstance(sel, list) or not all(isinstance(s, str) for s in sel) or not sel:
            out.append(FieldProblem("context.selections", "required (a list of 'Type/id')"))
    if "fhirAuthorization" in body and not isinstance(body.get("fhirServer"), str):
        out.append(FieldProblem("fhirServer", "required when fhirAuthorization is given"))
    if "prefetch" in body and not isinstance(body["prefetch"], dict):
        out.append(FieldProblem("prefetch", "expected an object"))
    return out


def _invalid(problems: Sequence[FieldProblem]) -> Response:
    return problem(
        400,
        "Malformed request",
        "; ".join(str(p) for p in problems),
        errors=[{"field": p.field, "reason": p.reason} for p in problems],
    )


def cds_router(
    settings: object | None = None,
    feedback_store: FeedbackStore | None = None,
    *,
    knowledge: Knowledge | None = None,
    policy: Policy = DEFAULT_POLICY,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
) -> APIRouter:
    """The CDS Hooks router. ``transport`` and ``clock`` are for tests."""
    config = CdsConfig.from_settings(settings)
    kb = knowledge or load_knowledge()
    store: FeedbackStore = feedback_store if feedback_store is not None else InMemoryFeedbackStore()
    now_fn = clock or (lambda: datetime.now(UTC))
    keys = prefetch_keys(kb)
    client_box: list[httpx.AsyncClient] = []

    def http() -> httpx.AsyncClient:
        if not client_box:
            client_box.append(
                httpx.AsyncClient(
                    transport=transport,
                    timeout=config.fhir_timeout_seconds,
                    follow_redirects=False,
                )
            )
        return client_box[0]

    auth = ClientAuthenticator(config, http, clock=lambda: now_fn().timestamp())
    gatherer = Gatherer(config, http)
    router = APIRouter(tags=["CDS Hooks"])

    def base_url(request: Request) -> str:
        return (config.public_base_url or str(request.base_url)).rstrip("/")

    async def authenticate(request: Request, *paths: str) -> Caller:
        base = base_url(request)
        audiences = [f"{base}{p}" for p in paths]
        return await auth.verify(request.headers.get("authorization"), audiences)

    @router.get("/cds-services", summary="CDS Hooks discovery")
    async def discovery(request: Request) -> Response:
        try:
            await authenticate(request, "/cds-services")
        except HookError as exc:
            return exc.response
        templates = {k.key: k.template for k in keys}
        services = [
            {
                "hook": hook,
                "title": SERVICE_TEXT[hook][0],
                "description": SERVICE_TEXT[hook][1],
                "id": hook,
                "prefetch": templates,
            }
            for hook in HOOKS
        ]
        return JSON({"services": services})

    @router.post("/cds-services/{service_id}", summary="Call a CDS service")
    async def call(service_id: str, request: Request) -> Response:
        if service_id not in HOOKS:
            return problem(404, "Not found", f"no CDS service {service_id!r}")
        try:
            caller = await authenticate(request, f"/cds-services/{service_id}")
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                return problem(400, "Malformed request", f"body is not JSON: {exc}")
            problems = _body_problems(service_id, body)
            if problems:
                return _invalid(problems)
            return await _evaluate(service_id, body, request, caller)
        except HookError as exc:
            return exc.response
        except InvalidInput as exc:
            return _invalid(exc.problems)

    async def _evaluate(
        service_id: str, body: dict[str, Any], request: Request, caller: Caller
    ) -> Response:
        context = body["context"]
        patient_id: str = context["patientId"]
        hook_instance: str = body["hookInstance"]
        web = config.web_base_url or base_url(request)
        options = CdsOptions(web_base_url=web)
        now = now_fn()
        try:
            got, failed = await gatherer.gather(body, keys)
        except SlowSource as exc:
            card = source_unavailable(
                service_id,
                hook_instance,
                why=str(exc),
                knowledge_version=kb.version,
                patient_id=patient_id,
                options=options,
            )
            return JSON({"cards": [card]})
        required_missing = [k.key for k in keys if k.required and k.key in failed]
        patient = got.get("patient")
        if isinstance(patient, dict) and patient.get("resourceType") == "Bundle":
            entries = bundle_resources(patient, "prefetch.patient")
            patient = entries[0] if entries else None
        if not required_missing and not (
            isinstance(patient, dict) and patient.get("resourceType") == "Patient"
        ):
            required_missing.append("patient")
        if required_missing:
            return problem(
                412,
                "Precondition Failed",
                "TriggerPath needs these data and could not obtain them from the prefetch or the "
                f"FHIR server: {', '.join(required_missing)}.",
                missing=required_missing,
            )
        assert isinstance(patient, dict)
        if patient.get("id") != patient_id:
            return problem(
                412, "Precondition Failed", "the Patient resource is not context.patientId"
            )
        resources: list[Any] = [patient]
        available: set[str] = set()
        for k in keys:
            if k.key in got and k.key != "patient":
                resources.extend(_resources(got[k.key], k.key))
                if k.resource_type != "Observation" or k.key == "weight":
                    available.add(k.resource_type)
        snapshot = snapshot_from_resources(
            resources, kb, now=now, policy=policy, patient_id=patient_id, available=available
        )
        evaluation: Evaluation
        if service_id == "patient-view":
            evaluation = patient_view(
                snapshot, kb, hook_instance=hook_instance, options=options, policy=policy
            )
        else:
            evaluation = order_hook(
                service_id,  # type: ignore[arg-type]
                snapshot,
                context["draftOrders"],
                kb,
                hook_instance=hook_instance,
                selections=context.get("selections"),
                options=options,
                policy=policy,
            )
        _remember(service_id, hook_instance, snapshot, evaluation, caller, now)
        return JSON(evaluation.response())

    def _remember(
        service_id: str,
        hook_instance: str,
        snapshot: PatientSnapshot,
        evaluation: Evaluation,
        caller: Caller,
        now: datetime,
    ) -> None:
        issued = []
        for card in evaluation.cards:
            ext = card.get("extension", {})
            issued.append(
                IssuedCard(
                    uuid=card["uuid"],
                    service_id=service_id,
                    hook_instance=hook_instance,
                    patient_id=snapshot.patient_id,
                    code=card["source"]["topic"]["code"],
                    indicator=card["indicator"],
                    summary=card["summary"],
                    suggestion_ids=tuple(s["uuid"] for s in card.get("suggestions", [])),
                    draft_orders=tuple(ext.get("org.triggerpath.draft-orders", [])),
                    trace=ext.get("org.triggerpath.trace", {}),
                    issued_at=now,
                    client=caller.issuer,
                )
            )
        if issued:
            store.record_cards(issued)

    @router.post("/cds-services/{service_id}/feedback", summary="Feedback on cards")
    async def feedback(service_id: str, request: Request) -> Response:
        if service_id not in HOOKS:
            return problem(404, "Not found", f"no CDS service {service_id!r}")
        try:
            caller = await authenticate(
                request, f"/cds-services/{service_id}/feedback", f"/cds-services/{service_id}"
            )
        except HookError as exc:
            return exc.response
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return problem(400, "Malformed request", f"body is not JSON: {exc}")
        records, problems = _parse_feedback(service_id, body, caller, now_fn())
        if problems:
            return _invalid(problems)
        store.add_feedback(records)
        return JSON(
            {
                "stored": len(records),
                "unknownCards": [r.card for r in records if not r.card_known],
            }
        )

    def _parse_feedback(
        service_id: str, body: Any, caller: Caller, now: datetime
    ) -> tuple[list[FeedbackRecord], list[FieldProblem]]:
        items = body.get("feedback") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return [], [FieldProblem("feedback", "required: a non-empty list")]
        records: list[FeedbackRecord] = []
        problems: list[FieldProblem] = []
        for i, item in enumerate(items):
            at = f"feedback[{i}]"
            if not isinstance(item, dict):
                problems.append(FieldProblem(at, "expected an object"))
                continue
            card_id, outcome = item.get("card"), item.get("outcome")
            if not isinstance(card_id, str) or not card_id:
                problems.append(FieldProblem(f"{at}.card", "required: the card uuid"))
                continue
            if outcome not in ("accepted", "overridden"):
                problems.append(FieldProblem(f"{at}.outcome", "'accepted' or 'overridden'"))
                continue
            stamp = item.get("outcomeTimestamp")
            try:
                when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
            except ValueError:
                when = None
            if when is None:
                problems.append(FieldProblem(f"{at}.outcomeTimestamp", "required: ISO timestamp"))
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            issued = store.card(card_id)
            if issued is not None and issued.service_id != service_id:
                problems.append(
                    FieldProblem(f"{at}.card", f"card was issued by {issued.service_id!r}")
                )
                continue
            accepted: list[str] = []
            if outcome == "accepted":
                raw = item.get("acceptedSuggestions")
                if not isinstance(raw, list) or not raw:
                    problems.append(
                        FieldProblem(f"{at}.acceptedSuggestions", "required when accepted")
                    )
                    continue
                for j, s in enumerate(raw):
                    sid = s.get("id") if isinstance(s, dict) else None
                    if not isinstance(sid, str):
                        problems.append(
                            FieldProblem(f"{at}.acceptedSuggestions[{j}].id", "required")
                        )
                    elif issued is not None and sid not in issued.suggestion_ids:
                        problems.append(
                            FieldProblem(
                                f"{at}.acceptedSuggestions[{j}].id", "not a suggestion of the card"
                            )
                        )
                    else:
                        accepted.append(sid)
            reason = item.get("overrideReason")
            coding: dict[str, Any] = {}
            comment = None
            if reason is not None:
                if not isinstance(reason, dict):
                    problems.append(FieldProblem(f"{at}.overrideReason", "expected an object"))
                    continue
                raw = reason.get("reason")
                coding = raw if isinstance(raw, dict) else {}
                comment = reason.get("userComment")
                if comment is not None and not isinstance(comment, str):
                    problems.append(
                        FieldProblem(f"{at}.overrideReason.userComment", "expected text")
                    )
                    continue
            records.append(
                FeedbackRecord(
                    service_id=service_id,
                    card=card_id,
                    outcome=outcome,
                    outcome_timestamp=when,
                    received_at=now,
                    client=caller.issuer,
                    accepted_suggestions=tuple(accepted),
                    override_system=_opt_str(coding.get("system")),
                    override_code=_opt_str(coding.get("code")),
                    override_display=_opt_str(coding.get("display")),
                    user_comment=comment[:2000] if comment else None,
                    card_code=issued.code if issued else None,
                    card_known=issued is not None,
                )
            )
        return records, problems

    return router


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


__all__ = [
    "CdsConfig",
    "ClientAuthenticator",
    "FeedbackRecord",
    "FeedbackStore",
    "InMemoryFeedbackStore",
    "IssuedCard",
    "TrustedClient",
    "cds_router",
    "prefetch_keys",
]
