"""Sign-in and sign-out (the same sessions, roles and audit as the API), static files."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from triggerpath.entrypoints.api.deps import request_id
from triggerpath.entrypoints.web.common import (
    Posted,
    StateDep,
)
from triggerpath.entrypoints.web.support import (
    PREFIX,
    Web,
    WebRoute,
    page,
    redirect,
    static_file,
)
from triggerpath.services import auth
from triggerpath.services.model import AuditEvent

router = APIRouter(route_class=WebRoute, include_in_schema=False)
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@router.get("/")
def root() -> Response:
    return redirect(f"{PREFIX}/")


@router.get(f"{PREFIX}/static/{{name}}")
def static(name: str) -> Response:
    data = static_file(name)
    if data is None:
        return Response(status_code=404)
    suffix = name[name.rfind(".") :]
    return Response(
        data,
        media_type=STATIC_TYPES.get(suffix, "application/octet-stream"),
        headers={"Cache-Control": "no-cache"},
    )


def _safe_next(value: str | None) -> str:
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//"):
        return value
    return f"{PREFIX}/"


@router.get(f"{PREFIX}/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return page(request, "login.html", None, next=_safe_next(next), username="", error=None)


@router.post(f"{PREFIX}/login")
async def login(request: Request, state: StateDep) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    nxt = _safe_next(str(form.get("next", "")))
    now = state.clock()
    user = None
    try:
        with state.uow_factory() as uow:
            user = auth.check_password(uow, username, password)
            token, _expires = auth.open_session(
                uow, state.secret_key, user, now, state.settings.session_hours
            )
            uow.commit()
    except auth.Unauthenticated:
        token = ""
    with state.uow_factory() as uow:
        known = user or uow.users.by_username(username)
        uow.audit.add(
            AuditEvent(
                at=now,
                request_id=request_id(request),
                actor=known.username if known else None,
                role=known.role if known else None,
                action="auth.login",
                outcome="success" if user else "denied",
            )
        )
        uow.commit()
    if user is None:
        return page(
            request,
            "login.html",
            None,
            status_code=401,
            next=nxt,
            username=username,
            error="Wrong username or password.",
        )
    response = redirect(nxt if user.role != "admin" else f"{PREFIX}/admin")
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=int(timedelta(hours=state.settings.session_hours).total_seconds()),
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return response


@router.post(f"{PREFIX}/logout")
def logout(web: Web, form: Posted) -> Response:
    with web.state.uow_factory() as uow:
        auth.close_session(uow, web.state.secret_key, web.token, web.state.clock())
        uow.commit()
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@router.get(f"{PREFIX}/admin")
def admin_home(request: Request, web: Web) -> HTMLResponse:
    return page(
        request,
        "error.html",
        web,
        title="Administrators",
        detail="The administrator role manages users, API keys, policy and the audit trail "
        "(CLI: triggerpath users, triggerpath audit; API: /docs). It sees no patient data.",
    )
