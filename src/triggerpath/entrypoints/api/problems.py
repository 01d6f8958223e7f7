"""Errors as RFC 9457 problem details (``application/problem+json``), naming the field.

Every error the API returns has ``type``, ``title``, ``status``, ``detail``,
``instance`` (the request path), ``request_id`` and, for input problems, ``errors``:
one ``{field, reason}`` per problem (body fields as dotted paths such as
``input.patient.age_years``; query, path and header parameters as ``query.limit``...).

Nothing here logs request content: a 500 logs the exception type, the route template and
the request id only, so no patient data reaches the application log.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from triggerpath.domain.validation import loc_to_path
from triggerpath.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    RuleProblem,
    TriggerPathError,
    VersionConflict,
    WriteRefused,
)
from triggerpath.services.auth import Busy, Forbidden, Throttled, Unauthenticated

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://triggerpath.example/problems/"
log = logging.getLogger("triggerpath.api")


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the field at fault")
    reason: str
    rule: str | None = Field(default=None, description="the safety-kernel rule that refused it")
    statement_ids: list[str] | None = Field(
        default=None, description="evidence statements behind the rule"
    )


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="URI identifying the problem type")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] = Field(default_factory=list)
    current_version: int | None = Field(
        default=None, description="on a version conflict: the record's current version"
    )


TITLES = {
    400: "Malformed request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
    507: "Insufficient storage",
}
SLUGS = {
    400: "malformed-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
    507: "insufficient-storage",
}
#: Seconds a client should wait after a database outage before trying again.
RETRY_AFTER_SECONDS = 2
#: SQLITE_FULL, and PostgreSQL's disk_full SQLSTATE
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


def disk_full(exc: BaseException) -> bool:
    """Did the database refuse the write for want of space?"""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL


def problem_response(
    request: Request | None,
    status: int,
    detail: str | None = None,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    rid = getattr(request.state, "request_id", None) if request is not None else None
    body = Problem(
        type=TYPE_BASE + SLUGS.get(status, "error"),
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        request_id=rid,
        errors=errors or [],
        **extra,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field(loc: tuple[int | str, ...]) -> str:
    if loc and loc[0] == "body":
        return loc_to_path(loc[1:]) or "(body)"
    if loc and loc[0] in ("query", "path", "header", "cookie"):
        return f"{loc[0]}.{loc_to_path(loc[1:])}"
    return loc_to_path(loc) or "(root)"


def validation_errors(exc: RequestValidationError) -> tuple[int, list[FieldError]]:
    status = 422
    errors = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        if e.get("type") == "json_invalid":
            status = 400
            pos = loc[1] if len(loc) > 1 else "?"
            why = (e.get("ctx") or {}).get("error", "invalid JSON")
            errors.append(FieldError(field="(body)", reason=f"not valid JSON at {pos}: {why}"))
            continue
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        field = _field(loc)
        if e.get("type") == "value_error":
            # model-level checks phrase their message as "field: reason"
            head, sep, rest = msg.partition(": ")
            if sep and head and " " not in head:
                base = "" if field in ("(body)", "(root)") else field
                field, msg = (f"{base}.{head}" if base else head), rest
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (not part of the schema)"
        errors.append(FieldError(field=field, reason=msg))
    return status, errors


def _field_error(p: FieldProblem) -> FieldError:
    if isinstance(p, RuleProblem):
        return FieldError(
            field=p.field, reason=p.reason, rule=p.rule, statement_ids=list(p.statement_ids)
        )
    return FieldError(field=p.field, reason=p.reason)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem details."""

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, errors = validation_errors(exc)
        detail = "the body is not valid JSON" if status == 400 else "the request is invalid"
        return problem_response(request, status, detail, errors=errors)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, detail, headers=headers)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, InvalidInput):
            errors = [_field_error(p) for p in exc.problems]
            detail = (
                "the safety kernel refused the write; nothing was stored"
                if isinstance(exc, WriteRefused)
                else "the request is invalid"
            )
            return problem_response(request, 422, detail, errors=errors)
        if isinstance(exc, Unauthenticated):
            return problem_response(
                request, 401, str(exc), headers={"WWW-Authenticate": 'Bearer realm="triggerpath"'}
            )
        if isinstance(exc, Forbidden):
            return problem_response(request, 403, str(exc))
        if isinstance(exc, Throttled):
            return problem_response(
                request, 429, str(exc), headers={"Retry-After": str(exc.retry_after)}
            )
        if isinstance(exc, Busy):
            return problem_response(
                request, 503, str(exc), headers={"Retry-After": str(exc.retry_after)}
            )
        if isinstance(exc, NotFound):
            return problem_response(request, 404, str(exc))
        if isinstance(exc, PreconditionFailed):
            return problem_response(request, 412, str(exc), current_version=exc.current_version)
        if isinstance(exc, VersionConflict):
            return problem_response(request, 409, str(exc), current_version=exc.current_version)
        if isinstance(exc, Conflict):
            return problem_response(request, 409, str(exc))
        return problem_response(request, 422, str(exc))

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        _log_failure(request, exc)
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if disk_full(exc):
            return problem_response(
                request, 507, "the database is out of storage; nothing was saved", headers=retry
            )
        return problem_response(
            request,
            503,
            "the database is unavailable; nothing was saved; try again shortly",
            headers=retry,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log_failure(request, exc)
        return problem_response(request, 500, "an internal error occurred; quote the request id")

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(TriggerPathError, on_domain)
    app.add_exception_handler(sa.exc.OperationalError, on_database)
    app.add_exception_handler(sa.exc.InterfaceError, on_database)
    app.add_exception_handler(sa.exc.TimeoutError, on_database)  # pool exhausted
    app.add_exception_handler(Exception, on_unexpected)


def _log_failure(request: Request, exc: Exception) -> None:
    route = request.scope.get("route")
    template = getattr(route, "path", "?")
    # type and route template only: exception messages can carry SQL parameters
    log.error(
        "request %s %s %s failed: %s",
        getattr(request.state, "request_id", "-"),
        request.method,
        template,
        type(exc).__name__,
    )


#: Responses every protected route may give, for the OpenAPI document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": TITLES[code], "content": {PROBLEM_JSON: {}}}
    for code in (400, 401, 403, 404, 409, 413, 422)
}
