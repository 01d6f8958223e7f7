"""ASGI middleware: request ids, an access log without patient data, a body size limit,
security headers, the control-character rule at the edge, and the audit of every request
on a patient route whatever its outcome.

The access log names the route *template* (``/api/v1/patients/{record_id}``), never the
path or query string, which may hold an MRN; uvicorn's own access log is turned off.

Order (outermost first): RequestContext → SecurityHeaders → PatientAudit → BodyLimit →
ControlCharacters → the app. So a 413 or a 422 from the edge still gets its headers and
its audit event.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote
from uuid import UUID

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerpath.domain import jsontext
from triggerpath.domain.text import control_character_problems, text_problem
from triggerpath.entrypoints.api.problems import FieldError, problem_response
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.services import audit
from triggerpath.services.model import Actor, AuditEvent, Outcome
from triggerpath.services.uow import UowFactory

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
access_log = logging.getLogger("triggerpath.access")


class _HttpMiddleware:
    """A pure ASGI middleware that acts on HTTP requests (:meth:`http`); the rest pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def passes(self, scope: Scope) -> bool:
        """Whether the request goes straight to the app (every non-HTTP one does)."""
        return bool(scope["type"] != "http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.passes(scope):
            await self.app(scope, receive, send)
        else:
            await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class _Tracked:
    """``send``, noting whether the response has started and its status (500 until it has)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
        await self._send(message)


class RequestContext(_HttpMiddleware):
    """Give each request an id (the caller's ``X-Request-ID`` when sane), echo it, log it."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = ""
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                given = value.decode("latin-1")
        rid = given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        tracked = _Tracked(send_with_id)
        try:
            await self.app(scope, receive, tracked)
        finally:
            route = scope.get("route")
            access_log.info(
                "%s %s %s %d %.1fms",
                rid,
                scope.get("method", "?"),
                getattr(route, "path", "(unrouted)"),
                tracked.status,
                (time.perf_counter() - started) * 1000,
            )


class _TooLarge(HTTPException):
    """Raised while the body streams in; FastAPI passes HTTPExceptions to their handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request bodies are limited to {limit} bytes")


class BodyLimit(_HttpMiddleware):
    """Refuse request bodies over ``max_bytes`` with 413 problem details.

    Checks ``Content-Length`` up front and counts the bytes of streamed bodies, so a
    chunked upload cannot get round the limit. ``prefix_limits`` gives paths their own
    limit (CDS Hooks calls carry a whole record as prefetch: 16 MiB by default).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, prefix_limits: dict[str, int] | None = None
    ) -> None:
        super().__init__(app)
        self.default_max_bytes = max_bytes
        self.prefix_limits = tuple((prefix_limits or {}).items())

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            Request(scope), 413, f"request bodies are limited to {limit} bytes"
        )
        await response(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        limit = next(
            (n for p, n in self.prefix_limits if path.startswith(p)), self.default_max_bytes
        )
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = max_bytes + 1
                if declared > max_bytes:
                    await self._refuse(scope, receive, send, max_bytes)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge(max_bytes)
            return message

        tracked = _Tracked(send)
        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not tracked.started:
                await self._refuse(scope, receive, send, max_bytes)


# --------------------------------------------------------------------------- headers
#: No inline script, no plugins, no framing, forms only to us. Inline *style* attributes
#: stay allowed (the body map's SVG uses them; they cannot run code).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: Swagger UI (/docs, development or TRIGGERPATH_PUBLIC_DOCS) loads its bundle from a CDN
#: and starts it with an inline script: the one page allowed that, and it holds no data.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
    "https://fastapi.tiangolo.com; frame-ancestors 'none'; object-src 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class SecurityHeaders(_HttpMiddleware):
    """Headers on every response; ``Cache-Control: no-store`` unless the route chose one.

    Patient data appears in API responses, pages, documents and PDFs, so nothing is
    cacheable by default; only static assets (which set ``no-cache`` themselves) opt out.
    HSTS is sent when the request came over https.
    """

    def __init__(self, app: ASGIApp, docs_paths: frozenset[str] = frozenset()) -> None:
        super().__init__(app)
        self.docs_paths = docs_paths

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        csp = DOCS_CSP if scope.get("path") in self.docs_paths else CSP
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])]
                present = {k.lower() for k, _ in headers}
                extra = {**BASE_HEADERS, "content-security-policy": csp}
                if b"cache-control" not in present:
                    extra["cache-control"] = "no-store"
                    extra["pragma"] = "no-cache"
                if https:
                    extra["strict-transport-security"] = HSTS
                headers += [(k.encode(), v.encode()) for k, v in extra.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


# --------------------------------------------------------------------------- control chars
#: The last path segments that are free text (tab and newline allowed there).
FREE_TEXT_FIELDS = frozenset(
    {"note", "notes", "reason", "comment", "user_comment", "userComment", "detail"}
)


def _query_problems(raw: bytes) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        for part, text in (("name", key), ("value", value)):
            field = f"query.{key}" if part == "value" else "query"
            if (p := text_problem(text, field)) is not None:
                problems.append(p)
    return problems


def _header_problems(scope: Scope) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1")
        if (p := text_problem(value.decode("latin-1"), f"header.{name}")) is not None:
            problems.append(p)
    return problems


def _body_problems(body: bytes, content_type: str) -> list[FieldProblem]:
    if not body:
        return []
    if "json" in content_type:
        try:  # bounded (depth, number size): the walk below must not recurse without end
            data: Any = jsontext.loads(body.decode("utf-8"))
        except (ValueError, RecursionError, InvalidInput):
            return []  # the route reports malformed or out-of-bounds JSON itself
        return list(control_character_problems(data, multiline_fields=FREE_TEXT_FIELDS))
    if "x-www-form-urlencoded" in content_type:
        # a form field may be a textarea (one item a line): tab and newline allowed in all
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return [
            p
            for key, value in pairs
            for p in (text_problem(key, "form"), text_problem(value, key, multiline=True))
            if p is not None
        ]
    return []


class ControlCharacters(_HttpMiddleware):
    """The control-character rule (:mod:`triggerpath.domain.text`) at the HTTP edge.

    Query strings, header values and JSON or form bodies: a control character (other
    than tab and newline in free-text fields) is a 422 naming the field, before any
    route or database sees it, so SQLite and PostgreSQL answer alike.

    ``own_check_prefixes``: routes that apply the same rule themselves on the body they
    parse (CDS Hooks: FHIR strings may hold tab, CR and newline anywhere, and a 16 MiB
    prefetch is parsed once, with orjson, by the route).
    """

    def __init__(self, app: ASGIApp, own_check_prefixes: tuple[str, ...] = ()) -> None:
        super().__init__(app)
        self.own_check_prefixes = own_check_prefixes

    def passes(self, scope: Scope) -> bool:
        """Non-HTTP requests, and the routes that apply the rule themselves."""
        own = scope.get("path", "").startswith(self.own_check_prefixes)
        return super().passes(scope) or own

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        problems = _header_problems(scope) + _query_problems(scope.get("query_string", b""))
        if (p := text_problem(unquote(scope.get("path", "")), "path")) is not None:
            problems.append(p)
        body, receive = await _buffer(receive)
        headers = dict(scope.get("headers", []))
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        problems += _body_problems(body, content_type)
        if problems:
            errors = [FieldError(field=p.field, reason=p.reason) for p in problems]
            response = problem_response(
                Request(scope), 422, "the request contains control characters", errors=errors
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body (BodyLimit, outside, bounds it) and a receive that replays it."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


# --------------------------------------------------------------------------- audit
PATIENT_ROUTE = re.compile(
    r"^/(api/v1|app)/(api/)?"
    r"(patients|episodes|assessments|plans|sessions|outcomes|documents|records|worklist)(/|$)"
)


def outcome_for(status: int) -> Outcome:
    if status < 400:
        return "success" if status < 300 else "denied"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    if status in (409, 412):
        return "conflict"
    if status < 500:
        return "invalid"
    return "error"


def _route_of(app: Any, scope: Scope) -> tuple[str | None, dict[str, Any]]:
    """The matched route template and path params (matching ourselves when the edge refused)."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", None), dict(scope.get("path_params", {}))
    router = getattr(app, "router", None)
    for candidate in getattr(router, "routes", []):
        match, child = candidate.matches(scope)
        if match is Match.FULL:
            return getattr(candidate, "path", None), dict(child.get("path_params", {}))
    return None, {}


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


class PatientAudit(_HttpMiddleware):
    """One audit event for every request on a patient route, whatever its outcome.

    Use cases record their own event (:class:`~triggerpath.services.audit.Call`); this
    records the requests that never reached one: 401 (no actor), 403 on the CSRF check,
    404 for an unknown route id, 413, 422 from validation or the edge, 5xx. The event
    names the actor when known, the route template as the action, and the ids in the path.
    """

    def __init__(self, app: ASGIApp, uow_factory: Callable[[], UowFactory]) -> None:
        super().__init__(app)
        self.uow_factory = uow_factory

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracked = _Tracked(send)
        recorded = audit.begin_request()
        try:
            await self.app(scope, receive, tracked)
        finally:
            if not recorded:
                await self._fallback(scope, tracked.status)

    async def _fallback(self, scope: Scope, status: int) -> None:
        template, params = _route_of(scope.get("app"), scope)
        if template is None:
            template = scope.get("path", "")
            if not PATIENT_ROUTE.match(template):
                return
            template = "(unrouted)"
        elif not PATIENT_ROUTE.match(template):
            return
        state = scope.get("state", {})
        call = state.get("audit_call")
        actor: Actor | None = call.actor if call is not None else None
        ids = {k: _uuid(v) for k, v in params.items() if k.endswith("_id")}
        patient_param = re.search(r"/patients/\{(\w+)\}", template)
        if patient_param and ids.get(patient_param.group(1)) is not None:
            ids["patient_id"] = ids[patient_param.group(1)]
        event = AuditEvent(
            at=call.now if call is not None else audit.utcnow(),
            request_id=str(state.get("request_id", "-")),
            actor=actor.username if actor else None,
            role=actor.role if actor else None,
            action=call.action if call is not None else f"{scope.get('method')} {template}",
            outcome=outcome_for(status),
            patient_id=ids.get("patient_id"),
            record_id=next((v for v in ids.values() if v is not None), None),
        )
        await anyio.to_thread.run_sync(self._write, event)

    def _write(self, event: AuditEvent) -> None:
        try:
            with self.uow_factory()() as uow:
                uow.audit.add(event)
                uow.commit()
        except Exception as exc:  # the database may be what failed; never mask the answer
            _log.warning("audit event not written (%s)", type(exc).__name__)


_log = logging.getLogger("triggerpath.audit")
