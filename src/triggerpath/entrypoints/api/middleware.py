"""ASGI middleware: request ids, an access log without patient data, a body size limit.

The access log names the route *template* (``/api/v1/patients/{record_id}``), never the
path or query string, which may hold an MRN; uvicorn's own access log is turned off.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerpath.entrypoints.api.problems import problem_response

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
access_log = logging.getLogger("triggerpath.access")


class RequestContext:
    """Give each request an id (the caller's ``X-Request-ID`` when sane), echo it, log it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                given = value.decode("latin-1")
        rid = given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            access_log.info(
                "%s %s %s %d %.1fms",
                rid,
                scope.get("method", "?"),
                getattr(route, "path", "(unrouted)"),
                status,
                (time.perf_counter() - started) * 1000,
            )


class _TooLarge(HTTPException):
    """Raised while the body streams in; FastAPI passes HTTPExceptions to their handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request bodies are limited to {limit} bytes")


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 problem details.

    Checks ``Content-Length`` up front and counts the bytes of streamed bodies, so a
    chunked upload cannot get round the limit. ``prefix_limits`` gives paths their own
    limit (CDS Hooks calls carry a whole record as prefetch: 16 MiB by default).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, prefix_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.prefix_limits = tuple((prefix_limits or {}).items())

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            Request(scope), 413, f"request bodies are limited to {limit} bytes"
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
        response_started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge(max_bytes)
            return message

        async def tracking(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking)
        except _TooLarge:
            if not response_started:
                await self._refuse(scope, receive, send, max_bytes)
