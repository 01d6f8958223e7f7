"""Administration in the web app (issue 17 §6): users, API keys, clinic policy, audit trail.

The same use cases and audited actions as ``/api/v1/users``, ``/settings/policy`` and
``/audit`` (role ``admin`` only; :data:`triggerpath.services.auth.PERMISSIONS`). Admins see
no clinical content: the audit view lists who did what to which record id, when and with
what outcome, never a record's text. Secrets (a reset token, an API key) are shown once,
on the page that issued them, and never stored in clear.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from triggerpath.domain.policy import Policy
from triggerpath.domain.validation import problems_from
from triggerpath.entrypoints.web import forms
from triggerpath.entrypoints.web.common import Posted
from triggerpath.entrypoints.web.support import PREFIX, Web, WebRoute, WebSession, page, redirect
from triggerpath.errors import Conflict, InvalidInput
from triggerpath.services import clinical, users
from triggerpath.services.audit import AuditNote
from triggerpath.services.model import ROLES, AuditEvent, AuditQuery, User, Window
from triggerpath.services.uow import UnitOfWork

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ADMIN = f"{PREFIX}/admin"
PAGE = 50
OUTCOMES = ("success", "denied", "not_found", "conflict", "invalid", "error")


@router.get(ADMIN)
def admin_home(request: Request, web: Web) -> HTMLResponse:
    total = web.run("user.list", lambda uow, note: users.list_users(uow, Window(limit=1))[1])
    return page(request, "admin.html", web, users_total=total)


# --------------------------------------------------------------------------- users
def _users_page(
    request: Request,
    web: WebSession,
    offset: int = 0,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    found, total = web.run(
        "user.list", lambda uow, note: users.list_users(uow, Window(PAGE, max(offset, 0)))
    )
    return page(
        request,
        "admin_users.html",
        web,
        status_code=status_code,
        users=found,
        total=total,
        offset=offset,
        page_size=PAGE,
        role_options=[(r, r) for r in ROLES],
        errors=errors or {},
        values=values or {},
    )


@router.get(f"{ADMIN}/users")
def users_page(request: Request, web: Web, offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    return _users_page(request, web, offset)


def _problems(exc: InvalidInput | Conflict, default: str) -> dict[str, list[str]]:
    if isinstance(exc, InvalidInput):
        out: dict[str, list[str]] = {}
        for p in exc.problems:
            out.setdefault(p.field or default, []).append(p.reason)
        return out
    text = str(exc)
    field, sep, reason = text.partition(": ")
    return {field: [reason]} if sep and " " not in field else {default: [text]}


@router.post(f"{ADMIN}/users")
def create_user(request: Request, web: Web, form: Posted) -> Response:
    v = forms.values_of(form)
    values = {k: forms.one(v, k) for k in ("username", "role")}
    password = forms.one(v, "password") or None

    def run(uow: UnitOfWork, note: AuditNote) -> User:
        user = users.create_user(
            uow,
            username=values["username"],
            role=values["role"],
            password=password,
            now=web.state.clock(),
            created_by=web.actor.username,
        )
        note.touch(None, user.id)
        return user

    try:
        user: User = web.run("user.create", run)
    except (InvalidInput, Conflict) as exc:
        return _users_page(
            request, web, errors=_problems(exc, "username"), values=values, status_code=422
        )
    return redirect(f"{ADMIN}/users/{user.id}")


def _user_page(request: Request, web: WebSession, user_id: UUID, **extra: Any) -> HTMLResponse:
    def run(uow: UnitOfWork, note: AuditNote) -> tuple[User, list[Any]]:
        note.touch(None, user_id)
        return users.get_user(uow, user_id), uow.users.api_keys(user_id)

    user, keys = web.run("user.read", run)
    extra.setdefault("errors", {})
    return page(request, "admin_user.html", web, user=user, keys=keys, roles=ROLES, **extra)


@router.get(f"{ADMIN}/users/{{user_id}}")
def user_page(request: Request, web: Web, user_id: UUID) -> HTMLResponse:
    return _user_page(request, web, user_id)


@router.post(f"{ADMIN}/users/{{user_id}}/update")
def update_user(request: Request, web: Web, form: Posted, user_id: UUID) -> Response:
    v = forms.values_of(form)
    role = forms.one(v, "role") or None
    active_text = forms.one(v, "active")
    active = {"true": True, "false": False}.get(active_text)

    def run(uow: UnitOfWork, note: AuditNote) -> User:
        note.touch(None, user_id)
        return users.update_user(uow, user_id, actor=web.actor, role=role, active=active)

    try:
        web.run("user.update", run)
    except (InvalidInput, Conflict) as exc:
        return _user_page(request, web, user_id, errors=_problems(exc, "user"))
    return redirect(f"{ADMIN}/users/{user_id}")


@router.post(f"{ADMIN}/users/{{user_id}}/reset")
def reset_password(request: Request, web: Web, form: Posted, user_id: UUID) -> Response:
    def run(uow: UnitOfWork, note: AuditNote) -> tuple[User, str, datetime]:
        note.touch(None, user_id)
        return users.reset_password(
            uow, web.state.secret_key, web.actor, user_id, web.state.clock()
        )

    try:
        user, token, expires = web.run("user.reset_password", run)
    except Conflict as exc:
        return _user_page(request, web, user_id, errors={"reset": [str(exc)]})
    return page(
        request,
        "admin_secret.html",
        web,
        user=user,
        what="Password reset token",
        secret=token,
        detail=f"Give it to {user.username} in person; it works once, until "
        f"{expires:%Y-%m-%d %H:%M} UTC (POST /api/v1/auth/password-reset). Every session "
        "they held has ended.",
    )


@router.post(f"{ADMIN}/users/{{user_id}}/api-keys")
def create_api_key(request: Request, web: Web, form: Posted, user_id: UUID) -> Response:
    name = forms.one(forms.values_of(form), "name")
    if not 1 <= len(name) <= 64:
        return _user_page(request, web, user_id, errors={"name": ["Give the key a name (1-64)."]})

    def run(uow: UnitOfWork, note: AuditNote) -> tuple[Any, str]:
        note.touch(None, user_id)
        return users.create_api_key(
            uow, web.state.secret_key, user_id, name=name, now=web.state.clock()
        )

    try:
        _, token = web.run("user.api_key.create", run)
    except Conflict as exc:
        return _user_page(request, web, user_id, errors={"name": [str(exc)]})
    user = web.run("user.read", lambda uow, note: users.get_user(uow, user_id))
    return page(
        request,
        "admin_secret.html",
        web,
        user=user,
        what=f"API key “{name}”",
        secret=token,
        detail="Copy it now into the system that will use it: it is shown only this once.",
    )


@router.post(f"{ADMIN}/users/{{user_id}}/api-keys/{{key_id}}/revoke")
def revoke_api_key(web: Web, form: Posted, user_id: UUID, key_id: UUID) -> Response:
    def run(uow: UnitOfWork, note: AuditNote) -> None:
        note.touch(None, user_id)
        users.revoke_api_key(uow, user_id, key_id, web.state.clock())

    web.run("user.api_key.revoke", run)
    return redirect(f"{ADMIN}/users/{user_id}")


# --------------------------------------------------------------------------- policy
def policy_fields(policy: Policy) -> list[dict[str, Any]]:
    """Each policy switch as a form field: name, label, help, value, input kind, options."""
    out = []
    for name, f in Policy.model_fields.items():
        ann = f.annotation
        options = [str(o) for o in get_args(ann)] if get_origin(ann) is Literal else []
        kind = "bool" if ann is bool else "select" if options else "number"
        value = getattr(policy, name)
        out.append(
            {
                "name": name,
                "label": name.replace("_", " ").capitalize(),
                "help": f.description or "",
                "value": str(value).lower() if ann is bool else str(value),
                "kind": kind,
                "options": options,
                "default": f.default,
            }
        )
    return out


def _policy_page(
    request: Request,
    web: WebSession,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    version, policy = web.run("policy.read", lambda uow, note: clinical.current_policy(uow))
    fields = policy_fields(policy)
    for f in fields:
        if values and f["name"] in values:
            f["value"] = values[f["name"]]
    return page(
        request,
        "admin_policy.html",
        web,
        status_code=status_code,
        version=version,
        fields=fields,
        errors=errors or {},
        values=values or {},
    )


@router.get(f"{ADMIN}/policy")
def policy_page(request: Request, web: Web) -> HTMLResponse:
    return _policy_page(request, web)


def _policy_values(v: forms.Values) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, f in Policy.model_fields.items():
        text = forms.one(v, name)
        if f.annotation is bool:
            out[name] = text == "true"
        elif text != "":
            out[name] = Decimal(text) if f.annotation is Decimal else text
    return out


@router.post(f"{ADMIN}/policy")
def update_policy(request: Request, web: Web, form: Posted) -> Response:
    v = forms.values_of(form)
    typed = {k: forms.one(v, k) for k in (*Policy.model_fields, "reason")}
    reason = forms.one(v, "reason")
    try:
        policy = Policy.model_validate(_policy_values(v))
    except (ValidationError, ArithmeticError) as err:
        errors: dict[str, list[str]] = {}
        if isinstance(err, ValidationError):
            for p in problems_from(err):
                errors.setdefault(p.field, []).append(p.reason)
        else:
            errors["policy"] = ["a number is not valid"]
        return _policy_page(request, web, errors=errors, values=typed, status_code=422)
    if len(reason) < 3:
        errors = {"reason": ["Say why the policy changes (at least 3 characters)."]}
        return _policy_page(request, web, errors=errors, values=typed, status_code=422)
    expected = int(forms.one(v, "version") or "0")
    try:
        web.run(
            "policy.update",
            lambda uow, note: clinical.update_policy(
                uow,
                web.actor,
                expected=expected,
                reason=reason,
                policy=policy,
                now=web.state.clock(),
            ),
        )
    except Conflict as exc:
        return _policy_page(
            request, web, errors={"version": [str(exc)]}, values=typed, status_code=409
        )
    return redirect(f"{ADMIN}/policy")


# --------------------------------------------------------------------------- audit
def _day(text: str, field: str, errors: dict[str, list[str]]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[field] = ["a date YYYY-MM-DD"]
        return None


def audit_query(values: dict[str, str]) -> tuple[AuditQuery, dict[str, list[str]]]:
    """The audit filters of the form, or the fields that do not parse."""
    errors: dict[str, list[str]] = {}
    patient: UUID | None = None
    if values.get("patient"):
        try:
            patient = UUID(values["patient"])
        except ValueError:
            errors["patient"] = ["a patient id (UUID)"]
    since = _day(values.get("since", ""), "since", errors)
    until = _day(values.get("until", ""), "until", errors)
    outcome = values.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        errors["outcome"] = [f"one of {', '.join(OUTCOMES)}"]
    query = AuditQuery(
        patient_id=patient,
        actor=values.get("actor") or None,
        action=values.get("action") or None,
        outcome=outcome,
        since=datetime.combine(since, time(), UTC) if since else None,
        until=datetime.combine(until, time(), UTC) + timedelta(days=1) if until else None,
    )
    return query, errors


@router.get(f"{ADMIN}/audit")
def audit_page(
    request: Request,
    web: Web,
    patient: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    offset: Annotated[int | None, Query(ge=0)] = None,
) -> HTMLResponse:
    values = {
        "patient": patient.strip(),
        "actor": actor.strip(),
        "action": action.strip(),
        "outcome": outcome,
        "since": since,
        "until": until,
    }
    query, errors = audit_query(values)

    def run(uow: UnitOfWork, note: AuditNote) -> tuple[list[AuditEvent], int, int]:
        if errors:
            return [], 0, 0
        _, total = uow.audit.page(query, Window(limit=1))
        start = max(total - PAGE, 0) if offset is None else min(offset, max(total - 1, 0))
        items, _ = uow.audit.page(query, Window(PAGE, start))
        return list(reversed(items)), total, start  # newest first

    events, total, start = web.run("audit.list", run)
    return page(
        request,
        "admin_audit.html",
        web,
        events=events,
        total=total,
        start=start,
        page_size=PAGE,
        values=values,
        errors=errors,
        outcome_options=[(o, o) for o in OUTCOMES],
        query=urlencode({k: v for k, v in values.items() if v}),
        status_code=422 if errors else 200,
    )
