"""Sign-in: browser sessions (cookie + CSRF token) and bearer JWTs for systems."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from triggerpath.entrypoints.api import schemas as s
from triggerpath.entrypoints.api.deps import CurrentActor, State, request_id, session_cookie
from triggerpath.entrypoints.api.problems import PROBLEM_RESPONSES
from triggerpath.services import auth
from triggerpath.services.model import AuditEvent, User

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=PROBLEM_RESPONSES)


def _signed_in(state: State, request: Request, credentials: s.Credentials, how: str) -> User:
    """Check the password; leave an ``auth.<how>`` audit event either way."""
    now = state.clock()
    user: User | None = None
    try:
        with state.uow_factory() as uow:
            user = auth.check_password(uow, credentials.username, credentials.password)
            uow.commit()
    finally:
        with state.uow_factory() as uow:
            known = user or uow.users.by_username(credentials.username)
            uow.audit.add(
                AuditEvent(
                    at=now,
                    request_id=request_id(request),
                    actor=known.username if known else None,
                    role=known.role if known else None,
                    action=f"auth.{how}",
                    outcome="success" if user else "denied",
                )
            )
            uow.commit()
    assert user is not None
    return user


@router.post("/login", response_model=s.LoginResult)
def login(
    credentials: s.Credentials, request: Request, response: Response, state: State
) -> s.LoginResult:
    """Open a browser session: sets the session cookie and returns the CSRF token."""
    user = _signed_in(state, request, credentials, "login")
    now = state.clock()
    with state.uow_factory() as uow:
        token, expires = auth.open_session(
            uow, state.secret_key, user, now, state.settings.session_hours
        )
        uow.commit()
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=int(timedelta(hours=state.settings.session_hours).total_seconds()),
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return s.LoginResult(
        username=user.username,
        role=user.role,
        csrf_token=auth.csrf_token(state.secret_key, token),
        expires_at=expires,
    )


@router.post("/logout", status_code=204)
def logout(
    response: Response,
    state: State,
    session: Annotated[str | None, Depends(session_cookie)] = None,
) -> Response:
    """Close the browser session (idempotent)."""
    if session:
        with state.uow_factory() as uow:
            auth.close_session(uow, state.secret_key, session, state.clock())
            uow.commit()
    response.status_code = 204
    response.delete_cookie(auth.SESSION_COOKIE, path="/", secure=True, httponly=True)
    return response


@router.post("/token", response_model=s.TokenResult)
def token(credentials: s.Credentials, request: Request, state: State) -> s.TokenResult:
    """A short-lived bearer JWT (HS256) for systems that sign in with a password."""
    user = _signed_in(state, request, credentials, "token")
    minutes = state.settings.jwt_minutes
    return s.TokenResult(
        access_token=auth.issue_jwt(state.jwt_key, user, state.clock(), minutes),
        expires_in=minutes * 60,
    )


@router.get("/me", response_model=s.Me)
def me(actor: CurrentActor) -> s.Me:
    """Who the credentials belong to."""
    return s.Me(username=actor.username, role=actor.role)
