"""CDS Hooks 2.0 service: discovery, the three TPI services, and feedback.

Mount it with one line: ``app.include_router(cds_router(settings, store))`` (the app
factory includes it first, so the hot routes are matched before the ~70 others).

- ``GET  /cds-services`` — discovery: ``patient-view``, ``order-select`` and
  ``order-sign``, each with its prefetch templates (built once from the value sets).
- ``POST /cds-services/{id}`` — the hook call. The body (up to
  ``TRIGGERPATH_CDS_MAX_REQUEST_BYTES``, default 16 MiB) is parsed once with orjson;
  prefetched data is used when sent (unknown keys ignored), missing keys are fetched from
  ``fhirServer`` within ``cds_fhir_timeout_seconds`` (see :mod:`.cds_prefetch`). A source
  too slow gives an explanatory card; required data that cannot be had gives 412. The same
  ``hookInstance`` sent again by the same client answers the stored cards (200, never 500).
- ``POST /cds-services/{id}/feedback`` — stores ``accepted``/``overridden`` with the
  override reason, linked to the card TriggerPath issued (and its trace).

Authentication: :mod:`.cds_auth` (signed JWT, JWKS, jti replay across workers).
``TRIGGERPATH_ENV=development`` allows unauthenticated calls.

Card and answer writes go through :class:`~triggerpath.services.feedback.WriteBehind`
(batched by one thread, flushed at shutdown). At start-up (the router's lifespan) one call
of each hook is evaluated, then the garbage collector is tuned (:mod:`.cds_runtime`);
``/readyz`` says ready only after that warm-up.

Settings read from the object given (attribute, else environment variable):
``env``, ``cds_fhir_timeout_seconds`` (default 2.0), ``cds_trusted_clients`` (JSON:
``{"<iss>": {"jwks_url": ...} | {"jwks": {...}}}``), ``cds_public_base_url`` (the ``aud``
base; default the request's own URL), ``web_base_url`` (links to the web view),
``cds_fhir_server_allowlist`` (URL prefixes a ``fhirServer`` must start with) and
``cds_max_request_bytes``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from triggerpath.adapters.cds_fhir import FHIR_R4
from triggerpath.adapters.fhir_r4.read import (
    PatientSnapshot,
    bundle_resources,
    snapshot_from_resources,
)
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.text import control_character_problems, json_free_text_clean
from triggerpath.entrypoints.api import cds_runtime
from triggerpath.entrypoints.api.cds_auth import (
    ALGORITHMS,
    AuthPolicy,
    Caller,
    ClientAuthenticator,
    HookError,
    TrustedClient,
    problem,
    replayed,
)
from triggerpath.entrypoints.api.cds_feedback_api import parse_feedback
from triggerpath.entrypoints.api.cds_prefetch import (
    SERVICE_TEXT,
    Gatherer,
    PrefetchKey,
    SlowSource,
    prefetch_keys,
    resources_of,
)
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
    Admission,
    CdsStore,
    FeedbackRecord,
    FeedbackStore,
    HookCall,
    InMemoryFeedbackStore,
    IssuedCard,
    WriteBehind,
)

JSON_TYPE = "application/json"
T = TypeVar("T")
CDS_MAX_REQUEST_BYTES = 16 * 1_048_576


def json_response(content: Any) -> Response:
    """orjson-rendered JSON (no FastAPI encoder pass)."""
    return Response(orjson.dumps(content), media_type=JSON_TYPE)


# --------------------------------------------------------------------------- configuration
def _setting(settings: object | None, name: str, default: Any = None) -> Any:
    """A setting: the object's attribute, else ``TRIGGERPATH_<NAME>``, else the default."""
    value = getattr(settings, name, None) if settings is not None else None
    if value is None:
        value = os.environ.get(f"TRIGGERPATH_{name.upper()}")
    reveal = getattr(value, "get_secret_value", None)
    if callable(reveal):
        value = reveal()
    return default if value is None else value


def _trusted_clients(raw: Any, env: str) -> tuple[dict[str, TrustedClient], list[FieldProblem]]:
    """``{issuer: {"jwks": {...}} | {"jwks_url": "https://..."}}``, as JSON or a mapping."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise InvalidInput.single("cds_trusted_clients", f"not JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise InvalidInput.single("cds_trusted_clients", "expected {issuer: {jwks_url|jwks}}")
    clients: dict[str, TrustedClient] = {}
    problems: list[FieldProblem] = []
    for iss, spec in raw.items():
        if isinstance(spec, TrustedClient):
            clients[iss] = spec
            continue
        if not isinstance(spec, Mapping) or not (spec.get("jwks") or spec.get("jwks_url")):
            problems.append(FieldProblem(f"cds_trusted_clients.{iss}", "give 'jwks' or 'jwks_url'"))
            continue
        url = spec.get("jwks_url")
        if url and not str(url).startswith("https://") and env != "development":
            problems.append(FieldProblem(f"cds_trusted_clients.{iss}.jwks_url", "must be https"))
        clients[iss] = TrustedClient(iss, spec.get("jwks"), url)
    return clients, problems


def _timeout(raw: Any, problems: list[FieldProblem]) -> float:
    try:
        timeout = float(raw)
    except (TypeError, ValueError):
        timeout = -1.0
    if not 0 < timeout <= 30:
        problems.append(FieldProblem("cds_fhir_timeout_seconds", "must be in (0, 30]"))
    return timeout


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
    max_request_bytes: int = CDS_MAX_REQUEST_BYTES

    @classmethod
    def from_settings(cls, settings: object | None) -> CdsConfig:
        """Read the CDS settings from a settings object, else the environment (at the edge)."""
        env = str(_setting(settings, "env", "production")).strip().lower()
        clients, problems = _trusted_clients(_setting(settings, "cds_trusted_clients", {}), env)
        allow = _setting(settings, "cds_fhir_server_allowlist", ())
        if isinstance(allow, str):
            allow = tuple(a.strip() for a in allow.split(",") if a.strip())
        timeout = _timeout(_setting(settings, "cds_fhir_timeout_seconds", 2.0), problems)
        if problems:
            raise InvalidInput(problems)
        return cls(
            development=env == "development",
            fhir_timeout_seconds=timeout,
            trusted_clients=clients,
            public_base_url=_setting(settings, "cds_public_base_url"),
            web_base_url=_setting(settings, "web_base_url"),
            fhir_server_allowlist=tuple(allow),
            max_request_bytes=int(
                _setting(settings, "cds_max_request_bytes", CDS_MAX_REQUEST_BYTES)
            ),
        )

    def auth_policy(self) -> AuthPolicy:
        return AuthPolicy(
            self.development,
            self.trusted_clients,
            self.algorithms,
            self.leeway_seconds,
            self.fhir_timeout_seconds,
        )


# --------------------------------------------------------------------------- request checks
def body_problems(service_id: str, body: Any) -> list[FieldProblem]:
    """What a hook call body lacks, by field path."""
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
    out += _context_problems(service_id, context)
    if "fhirAuthorization" in body and not isinstance(body.get("fhirServer"), str):
        out.append(FieldProblem("fhirServer", "required when fhirAuthorization is given"))
    if "prefetch" in body and not isinstance(body["prefetch"], dict):
        out.append(FieldProblem("prefetch", "expected an object"))
    return out


def _context_problems(service_id: str, context: Mapping[str, Any]) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    if not isinstance(context.get("patientId"), str) or not context["patientId"]:
        out.append(FieldProblem("context.patientId", "required"))
    if service_id != "patient-view" and not isinstance(context.get("draftOrders"), dict):
        out.append(FieldProblem("context.draftOrders", "required (a FHIR Bundle)"))
    if service_id == "order-select":
        sel = context.get("selections")
        if not isinstance(sel, list) or not all(isinstance(s, str) for s in sel) or not sel:
            out.append(FieldProblem("context.selections", "required (a list of 'Type/id')"))
    return out


def invalid(problems: Sequence[FieldProblem]) -> Response:
    """400 problem details naming each field."""
    return problem(
        400,
        "Malformed request",
        "; ".join(str(p) for p in problems),
        errors=[{"field": p.field, "reason": p.reason} for p in problems],
    )


class _AnyField(frozenset[str]):
    """Every field is free text in FHIR: ``string`` allows tab, CR and newline anywhere."""

    def __contains__(self, item: object) -> bool:
        return True


FHIR_FREE_TEXT = _AnyField()


def _json_body(raw: bytes) -> Any:
    """The body, parsed once with orjson, under the one control-character rule
    (:mod:`triggerpath.domain.text`; the HTTP edge leaves CDS bodies to this). The walk
    over every string runs only when the bytes cannot rule a control character out."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HookError(400, "Malformed request", f"body is not JSON: {exc}") from None
    if json_free_text_clean(raw):
        return body
    problems = list(control_character_problems(body, multiline_fields=FHIR_FREE_TEXT))
    if problems:
        raise HookError(
            400,
            "Malformed request",
            "; ".join(str(p) for p in problems[:20]),
            errors=[{"field": p.field, "reason": p.reason} for p in problems[:100]],
        )
    return body


def _precondition(missing: list[str]) -> HookError:
    return HookError(
        412,
        "Precondition Failed",
        "TriggerPath needs these data and could not obtain them from the prefetch or the "
        f"FHIR server: {', '.join(missing)}.",
        missing=missing,
    )


def _patient_of(got: Mapping[str, Any]) -> Any:
    patient = got.get("patient")
    if isinstance(patient, dict) and patient.get("resourceType") == "Bundle":
        entries = bundle_resources(patient, "prefetch.patient")
        patient = entries[0] if entries else None
    return patient


def _issued_cards(
    service_id: str,
    hook_instance: str,
    patient_id: str | None,
    ev: Evaluation,
    caller: Caller,
    now: datetime,
) -> list[IssuedCard]:
    """The cards of an answer as the store keeps them (with their trace)."""
    out = []
    for card in ev.cards:
        ext = card.get("extension", {})
        out.append(
            IssuedCard(
                uuid=card["uuid"],
                service_id=service_id,
                hook_instance=hook_instance,
                patient_id=patient_id,
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
    return out


# --------------------------------------------------------------------------- the service
@dataclass
class CdsService:
    """Everything a hook call needs, built once; its methods are the routes."""

    config: CdsConfig
    kb: Knowledge
    store: CdsStore
    policy: Policy = DEFAULT_POLICY
    transport: httpx.AsyncBaseTransport | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    warmed: bool = False

    def __post_init__(self) -> None:
        self.keys: list[PrefetchKey] = prefetch_keys(self.kb)
        self.writer = WriteBehind(self.store)
        self._client: httpx.AsyncClient | None = None
        # the request path's database statements run on two threads of their own: the event
        # loop never waits on the database, and each worker keeps at most two connections
        self._db = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cds-db")
        self.auth = ClientAuthenticator(
            self.config.auth_policy(),
            self.http,
            self.store,
            clock=lambda: self.clock().timestamp(),
            offload=self.on_db_thread,
        )
        self.gatherer = Gatherer(
            self.config.fhir_timeout_seconds, self.config.fhir_server_allowlist, self.http
        )
        templates = {k.key: k.template for k in self.keys}
        self.discovery_body = orjson.dumps(
            {
                "services": [
                    {
                        "hook": h,
                        "title": SERVICE_TEXT[h][0],
                        "description": SERVICE_TEXT[h][1],
                        "id": h,
                        "prefetch": templates,
                    }
                    for h in HOOKS
                ]
            }
        )

    async def on_db_thread(self, work: Callable[[], T]) -> T:
        """Run a database statement of the request path on the CDS database threads."""
        return await asyncio.get_running_loop().run_in_executor(self._db, work)

    def http(self) -> httpx.AsyncClient:
        """One pooled client for FHIR servers and JWKS (created on first use)."""
        if self._client is None:
            timeout = self.config.fhir_timeout_seconds
            self._client = httpx.AsyncClient(
                transport=self.transport, timeout=timeout, follow_redirects=False
            )
        return self._client

    def base_url(self, request: Request) -> str:
        return (self.config.public_base_url or str(request.base_url)).rstrip("/")

    async def authenticate(self, request: Request, *paths: str, claim: bool = True) -> Caller:
        """The caller, with ``aud`` checked against the endpoint's own URL(s)."""
        base = self.base_url(request)
        audiences = [f"{base}{p}" for p in paths]
        header = request.headers.get("authorization")
        return await self.auth.verify(header, audiences, claim=claim)

    # ---- routes
    async def discovery(self, request: Request) -> Response:
        """``GET /cds-services``: the three services and their prefetch templates."""
        try:
            await self.authenticate(request, "/cds-services")
        except HookError as exc:
            return exc.response
        return Response(self.discovery_body, media_type=JSON_TYPE)

    async def call(self, service_id: str, request: Request) -> Response:
        """``POST /cds-services/{id}``: the cards for one hook call."""
        if service_id not in HOOKS:
            return problem(404, "Not found", f"no CDS service {service_id!r}")
        try:
            caller = await self.authenticate(request, f"/cds-services/{service_id}", claim=False)
            raw = await request.body()
            body = await self._checked_body(service_id, raw, caller)
            call = _Call(service_id, body, hashlib.sha256(raw).hexdigest(), caller)
            admission = asyncio.ensure_future(
                self.on_db_thread(lambda: self._admit(caller, service_id, body["hookInstance"]))
            )
            return await self._admitted_answer(call, admission, request)
        except _Repeat as exc:
            return Response(exc.content, media_type=JSON_TYPE)  # the same call again
        except HookError as exc:
            return exc.response
        except InvalidInput as exc:
            return invalid(exc.problems)
        except _Unavailable as exc:
            return json_response({"cards": [exc.card]})

    async def feedback(self, service_id: str, request: Request) -> Response:
        """``POST /cds-services/{id}/feedback``: outcomes of the cards issued."""
        if service_id not in HOOKS:
            return problem(404, "Not found", f"no CDS service {service_id!r}")
        base = f"/cds-services/{service_id}"
        try:
            caller = await self.authenticate(request, f"{base}/feedback", base)
            body = _json_body(await request.body())
        except HookError as exc:
            return exc.response
        records, problems = parse_feedback(
            service_id, body, caller.issuer, self.clock(), self.writer.card
        )
        if problems:
            return invalid(problems)
        self.writer.flush()  # the cards this feedback is about are written before it
        self.store.add_feedback(records)
        unknown = [r.card for r in records if not r.card_known]
        return json_response({"stored": len(records), "unknownCards": unknown})

    # ---- steps of a hook call
    async def _admitted_answer(
        self, call: _Call, admission: asyncio.Future[tuple[bool, HookCall | None]], request: Request
    ) -> Response:
        """The answer, evaluated while the database thread claims the jti and looks up the
        hookInstance (one statement). Nothing is fetched from a FHIR server, answered or
        stored before that statement says the call is new: a replay is 401 and a repeat
        gets its stored answer whatever else the call would have given."""

        async def admitted() -> HookCall | None:
            claimed, stored = await admission
            if not claimed:
                raise replayed()  # the jti was used at another worker
            if stored is not None and stored.request_digest == call.digest:
                raise _Repeat(stored.response)
            return stored

        try:
            gathered = await self._gathered(call.body, admitted)
            content, cards, answer = self._answer(call, gathered, request)
        except (HookError, InvalidInput, _Unavailable):
            await admitted()  # a replay or a repeat comes before a 412 or a source card
            raise
        stored = await admitted()
        self.writer.record(cards, answer if stored is None else None)
        return Response(content, media_type=JSON_TYPE)

    async def _checked_body(self, service_id: str, raw: bytes, caller: Caller) -> Any:
        """The parsed, checked body; a refused one still claims the jti first, so a
        replayed token is a 401 whatever its body."""
        try:
            body = _json_body(raw)
            problems = body_problems(service_id, body)
        except HookError:
            await self._claim(caller)
            raise
        if problems:
            await self._claim(caller)
            raise InvalidInput(problems)
        return body

    async def _claim(self, caller: Caller) -> None:
        if caller.unclaimed is not None:
            await self.auth.claim(caller.unclaimed)

    def _admit(
        self, caller: Caller, service_id: str, instance: str
    ) -> tuple[bool, HookCall | None]:
        """(database thread) The jti claimed and the answer already given, in one
        statement; an unsigned development call has no jti to claim."""
        t = caller.unclaimed
        if t is None:
            return True, self.writer.hook_call(caller.issuer, service_id, instance)
        return self.writer.admit(
            Admission(t.issuer, t.jti, t.expires_at, t.at, service_id, instance)
        )

    async def _gathered(
        self, body: dict[str, Any], before_fetch: Callable[[], Awaitable[object]]
    ) -> tuple[dict[str, Any], list[str]]:
        """The prefetch plus what the FHIR server gave (too slow: an explanatory card)."""
        try:
            return await self.gatherer.gather(body, self.keys, before_fetch)
        except SlowSource as exc:
            raise _Unavailable(self._unavailable_card(body, str(exc))) from None

    def _unavailable_card(self, body: dict[str, Any], why: str) -> dict[str, Any]:
        return source_unavailable(
            body["hook"],
            body["hookInstance"],
            why=why,
            knowledge_version=self.kb.version,
            patient_id=body["context"]["patientId"],
            options=CdsOptions(web_base_url=self.config.web_base_url or ""),
        )

    def _answer(
        self, call: _Call, gathered: tuple[dict[str, Any], list[str]], request: Request
    ) -> tuple[bytes, list[IssuedCard], HookCall]:
        """Evaluate the call: the answer's bytes, its cards and the answer to keep."""
        now = self.clock()
        options = CdsOptions(web_base_url=self.config.web_base_url or self.base_url(request))
        snapshot = self._snapshot(call.body, *gathered, now)
        evaluation = self._evaluate(call.service_id, call.body, snapshot, options)
        content = orjson.dumps(evaluation.response())
        issuer, instance = call.caller.issuer, call.body["hookInstance"]
        cards = _issued_cards(
            call.service_id, instance, snapshot.patient_id, evaluation, call.caller, now
        )
        return (
            content,
            cards,
            HookCall(issuer, call.service_id, instance, call.digest, content, now),
        )

    def _snapshot(
        self, body: dict[str, Any], got: dict[str, Any], failed: list[str], now: datetime
    ) -> PatientSnapshot:
        """The record from the gathered data, or 412 naming what is missing."""
        patient_id: str = body["context"]["patientId"]
        missing = [k.key for k in self.keys if k.required and k.key in failed]
        patient = _patient_of(got)
        if not missing and not (
            isinstance(patient, dict) and patient.get("resourceType") == "Patient"
        ):
            missing.append("patient")
        if missing:
            raise _precondition(missing)
        assert isinstance(patient, dict)
        if patient.get("id") != patient_id:
            raise HookError(
                412, "Precondition Failed", "the Patient resource is not context.patientId"
            )
        resources: list[Any] = [patient]
        available: set[str] = set()
        for k in self.keys:
            if k.key in got and k.key != "patient":
                resources.extend(resources_of(got[k.key], k.key))
                if k.resource_type != "Observation" or k.key == "weight":
                    available.add(k.resource_type)
        return snapshot_from_resources(
            resources,
            self.kb,
            now=now,
            policy=self.policy,
            patient_id=patient_id,
            available=available,
        )

    def _evaluate(
        self, service_id: str, body: dict[str, Any], snapshot: PatientSnapshot, options: CdsOptions
    ) -> Evaluation:
        """The hook's cards for the record."""
        common: dict[str, Any] = {
            "hook_instance": body["hookInstance"],
            "fhir": FHIR_R4,
            "options": options,
            "policy": self.policy,
        }
        if service_id == "patient-view":
            return patient_view(snapshot, self.kb, **common)
        context = body["context"]
        return order_hook(
            service_id,  # type: ignore[arg-type]
            snapshot,
            context["draftOrders"],
            self.kb,
            selections=context.get("selections"),
            **common,
        )

    # ---- start-up and shutdown
    def warm_up(self) -> bool:
        """Evaluate one synthetic call of each hook (nothing stored); True when done."""
        if not self.warmed:
            for hook in HOOKS:
                body = cds_runtime.warm_up_request(hook)
                snapshot = self._snapshot(body, dict(body["prefetch"]), [], self.clock())
                evaluation = self._evaluate(
                    hook, body, snapshot, CdsOptions(web_base_url="http://warm-up")
                )
                orjson.dumps(evaluation.response())
            self.warmed = True
        return self.warmed

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Warm up, tune the GC (outside development); at shutdown write what is queued."""
        self.warm_up()
        app.state.cds_ready = self.warm_up
        if not self.config.development:
            cds_runtime.tune_gc()
        try:
            yield
        finally:
            self.writer.close()  # the database threads stay: an app may be started again
            if self._client is not None:
                await self._client.aclose()
            cds_runtime.PAUSES.write()

    def router(self) -> APIRouter:
        """The routes, as small named functions over this service."""
        router = APIRouter(tags=["CDS Hooks"], lifespan=self.lifespan)
        router.add_api_route(
            "/cds-services", self.discovery, methods=["GET"], summary="CDS Hooks discovery"
        )
        router.add_api_route(
            "/cds-services/{service_id}", self.call, methods=["POST"], summary="Call a CDS service"
        )
        router.add_api_route(
            "/cds-services/{service_id}/feedback",
            self.feedback,
            methods=["POST"],
            summary="Feedback on cards",
        )
        return router


@dataclass(frozen=True)
class _Call:
    """One hook call after its checks: the body, its digest, the caller."""

    service_id: str
    body: dict[str, Any]
    digest: str
    caller: Caller


class _Repeat(Exception):
    """The same call again: its stored answer."""

    def __init__(self, content: bytes) -> None:
        super().__init__("repeated hookInstance")
        self.content = content


class _Unavailable(Exception):
    def __init__(self, card: dict[str, Any]) -> None:
        super().__init__("source unavailable")
        self.card = card


def cds_service(
    settings: object | None = None,
    store: CdsStore | None = None,
    *,
    knowledge: Knowledge | None = None,
    policy: Policy = DEFAULT_POLICY,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
) -> CdsService:
    """The CDS service for ``settings`` (``transport`` and ``clock`` are for tests)."""
    return CdsService(
        CdsConfig.from_settings(settings),
        knowledge or load_knowledge(),
        store if store is not None else InMemoryFeedbackStore(),
        policy,
        transport,
        clock or (lambda: datetime.now(UTC)),
    )


def cds_router(
    settings: object | None = None,
    feedback_store: CdsStore | None = None,
    *,
    knowledge: Knowledge | None = None,
    policy: Policy = DEFAULT_POLICY,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
) -> APIRouter:
    """The CDS Hooks router. ``transport`` and ``clock`` are for tests."""
    service = cds_service(
        settings,
        feedback_store,
        knowledge=knowledge,
        policy=policy,
        transport=transport,
        clock=clock,
    )
    return service.router()


__all__ = [
    "CDS_MAX_REQUEST_BYTES",
    "CdsConfig",
    "CdsService",
    "ClientAuthenticator",
    "FeedbackRecord",
    "FeedbackStore",
    "InMemoryFeedbackStore",
    "IssuedCard",
    "TrustedClient",
    "cds_router",
    "cds_service",
    "prefetch_keys",
]
