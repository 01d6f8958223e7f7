"""Sign-in and sign-out (the same sessions, roles and audit as the API), static files."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from triggerpath.entrypoints.api.deps import AppState
from triggerpath.entrypoints.api.routes_auth import set_session_cookie, signed_in
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


LOGIN_CSRF_COOKIE = "tp_login_csrf"


def _login_csrf(state: AppState, nonce: str) -> str:
    return auth.csrf_token(state.secret_key, "login:" + nonce)


def _login_page(
    request: Request,
    state: AppState,
    *,
    nxt: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form with a fresh login-CSRF pair (cookie nonce + form token)."""
    nonce = auth.new_token()
    response = page(
        request,
        "login.html",
        None,
        status_code=status_code,
        next=nxt,
        username=username,
        error=error,
        login_csrf=_login_csrf(state, nonce),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        nonce,
        max_age=3600,
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
        path=f"{PREFIX}/login",
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _cross_site(request: Request) -> bool:
    """A browser said the form came from another site (Sec-Fetch-Site, else Origin).

    Our ``Referrer-Policy: no-referrer`` makes browsers send ``Origin: null`` even for our
    own forms, so ``null`` alone proves nothing; the token check below is what holds.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.split("://", 1)[-1] != request.headers.get("host", "")
    return False


def _login_csrf_ok(request: Request, state: AppState, presented: str) -> bool:
    """Login CSRF (ASVS 4.2.2): the form's token must match this browser's cookie nonce."""
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not nonce or _cross_site(request):
        return False
    return hmac.compare_digest(_login_csrf(state, nonce), presented)


@router.get(f"{PREFIX}/login")
def login_page(request: Request, state: StateDep, next: str | None = None) -> HTMLResponse:
    return _login_page(request, state, nxt=_safe_next(next))


@router.post(f"{PREFIX}/login")
async def login(request: Request, state: StateDep) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    nxt = _safe_next(str(form.get("next", "")))
    if not _login_csrf_ok(request, state, str(form.get("csrf", ""))):
        return _login_page(
            request,
            state,
            nxt=nxt,
            username=username,
            status_code=403,
            error="The sign-in form expired. Please sign in again.",
        )
    try:
        user = await run_in_threadpool(signed_in, state, request, username, password, "login")
        with state.uow_factory() as uow:
            token, _expires = auth.open_session(
                uow, state.secret_key, user, state.clock(), state.settings.session_hours
            )
            uow.commit()
    except auth.Unauthenticated:
        return _login_page(
            request,
            state,
            nxt=nxt,
            username=username,
            status_code=401,
            error="Wrong username or password.",
        )
    except (auth.Throttled, auth.Busy) as exc:
        return _login_page(
            request,
            state,
            nxt=nxt,
            username=username,
            status_code=429 if isinstance(exc, auth.Throttled) else 503,
            error=f"Too many attempts. Try again in {exc.retry_after} seconds.",
            headers={"Retry-After": str(exc.retry_after)},
        )
    response = redirect(nxt if user.role != "admin" else f"{PREFIX}/admin")
    set_session_cookie(response, state, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post(f"{PREFIX}/logout")
def logout(web: Web, form: Posted) -> Response:
    """Sign out everywhere: this session and every other session and token of the user."""
    with web.state.uow_factory() as uow:
        auth.close_session(uow, web.state.secret_key, web.token, web.state.clock())
        if web.actor.user_id is not None:
            auth.end_credentials(uow, web.actor.user_id)
        uow.commit()
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response
