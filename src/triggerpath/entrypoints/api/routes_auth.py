"""Sign-in: browser sessions (cookie + CSRF token) and bearer JWTs for systems.

Every attempt is throttled (per account and per client address, 429 with
``Retry-After``), bounded in concurrent password hashes (503 with ``Retry-After``) and
audited. Logout, a password change and a completed reset end every session and bearer
token the user held before (the token version moves on).
"""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from triggerpath.entrypoints.api import schemas as s
from triggerpath.entrypoints.api import schemas_security as ss
from triggerpath.entrypoints.api.deps import (
    AppState,
    CurrentActor,
    State,
    client_address,
    request_id,
    session_cookie,
)
from triggerpath.entrypoints.api.problems import PROBLEM_RESPONSES, Problem
from triggerpath.services import audit, auth, users
from triggerpath.services.model import Actor, AuditEvent, Outcome, User

THROTTLE_RESPONSES: dict[int | str, dict[str, object]] = {
    **PROBLEM_RESPONSES,
    429: {"model": Problem, "description": "Too many failed sign-ins (see Retry-After)"},
    503: {"model": Problem, "description": "Busy checking passwords (see Retry-After)"},
}
router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=THROTTLE_RESPONSES)


def _event(
    state: AppState, request: Request, action: str, outcome: Outcome, who: User | Actor | None
) -> None:
    audit.record(
        state.uow_factory,
        AuditEvent(
            at=state.clock(),
            request_id=request_id(request),
            actor=who.username if who else None,
            role=who.role if who else None,
            action=action,
            outcome=outcome,
            record_id=getattr(who, "id", None) or getattr(who, "user_id", None),
        ),
    )


def signed_in(state: AppState, request: Request, username: str, password: str, how: str) -> User:
    """Check the password (throttled); leave an ``auth.<how>`` audit event either way."""
    now = state.clock()
    user: User | None = None
    known: User | None = None
    try:
        with state.uow_factory() as uow:
            known = uow.users.by_username(username)
            user = auth.attempt_login(
                uow, state.guard, username, password, client_address(request), now
            )
            uow.commit()
    finally:
        _event(state, request, f"auth.{how}", "success" if user else "denied", user or known)
    if user is None:
        raise auth.Unauthenticated("invalid username or password")
    return user


def set_session_cookie(response: Response, state: AppState, token: str) -> None:
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=int(timedelta(hours=state.settings.session_hours).total_seconds()),
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
        path="/",
    )


@router.post("/login", response_model=s.LoginResult)
def login(
    credentials: s.Credentials, request: Request, response: Response, state: State
) -> s.LoginResult:
    """Open a browser session: sets the session cookie and returns the CSRF token."""
    user = signed_in(state, request, credentials.username, credentials.password, "login")
    with state.uow_factory() as uow:
        token, expires = auth.open_session(
            uow, state.secret_key, user, state.clock(), state.settings.session_hours
        )
        uow.commit()
    set_session_cookie(response, state, token)
    return s.LoginResult(
        username=user.username,
        role=user.role,
        csrf_token=auth.csrf_token(state.secret_key, token),
        expires_at=expires,
    )


@router.post("/logout", status_code=204)
def logout(
    request: Request,
    response: Response,
    state: State,
    actor: CurrentActor,
    session: Annotated[str | None, Depends(session_cookie)] = None,
) -> Response:
    """Sign out everywhere: ends this session and every session and JWT of the user.

    Needs valid credentials (and, with the cookie, the CSRF header): a forged logout
    cannot end someone's work. API keys are revoked separately, by an admin.
    """
    with state.uow_factory() as uow:
        if session:
            auth.close_session(uow, state.secret_key, session, state.clock())
        if actor.user_id is not None:
            auth.end_credentials(uow, actor.user_id)
        uow.commit()
    _event(state, request, "auth.logout", "success", actor)
    response.status_code = 204
    response.delete_cookie(auth.SESSION_COOKIE, path="/", secure=True, httponly=True)
    return response


@router.post("/token", response_model=s.TokenResult)
def token(credentials: s.Credentials, request: Request, state: State) -> s.TokenResult:
    """A short-lived bearer JWT (HS256) for systems that sign in with a password."""
    user = signed_in(state, request, credentials.username, credentials.password, "token")
    minutes = state.settings.jwt_minutes
    return s.TokenResult(
        access_token=auth.issue_jwt(state.jwt_key, user, state.clock(), minutes),
        expires_in=minutes * 60,
    )


@router.post("/password", status_code=204)
def change_password(
    body: ss.PasswordChange, request: Request, actor: CurrentActor, state: State
) -> Response:
    """Change your own password (ASVS V2.1); every session and token you hold ends."""
    now = state.clock()
    changed: User | None = None
    try:
        with state.uow_factory() as uow:
            changed = users.change_password(
                uow,
                state.guard,
                actor,
                body.current_password,
                body.new_password,
                client_address(request),
                now,
            )
            uow.commit()
    finally:
        _event(state, request, "auth.password", "success" if changed else "denied", actor)
    if changed is None:
        raise auth.Unauthenticated("the current password is wrong")
    response = Response(status_code=204)
    response.delete_cookie(auth.SESSION_COOKIE, path="/", secure=True, httponly=True)
    return response


@router.post("/password-reset", status_code=204)
def complete_reset(body: ss.PasswordReset, request: Request, state: State) -> Response:
    """Choose a password with the one-time token an admin reset issued."""
    user: User | None = None
    try:
        with state.uow_factory() as uow:
            user = users.complete_reset(
                uow, state.secret_key, body.reset_token, body.new_password, state.clock()
            )
            uow.commit()
    finally:
        _event(state, request, "auth.password_reset", "success" if user else "denied", user)
    return Response(status_code=204)


@router.get("/me", response_model=s.Me)
def me(actor: CurrentActor) -> s.Me:
    """Who the credentials belong to."""
    return s.Me(username=actor.username, role=actor.role)
