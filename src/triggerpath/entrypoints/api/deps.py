"""What routes depend on: the app state, the authenticated actor, an audited call.

Routers written elsewhere (CDS Hooks, the web app) use the same three::

    from triggerpath.entrypoints.api.deps import CurrentActor, State, action

    @router.post("/thing")
    def thing(state: State, call: Annotated[Call, action("compute.assess")]) -> ...:
        return call.run(lambda uow, note: ...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
from fastapi import Depends, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from triggerpath.config import Settings
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import auth
from triggerpath.services.audit import Call
from triggerpath.services.model import Actor, Window
from triggerpath.services.uow import UowFactory

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppState:
    """Everything a request needs, built once by ``create_app``."""

    settings: Settings
    engine: sa.Engine
    kb: Knowledge
    uow_factory: UowFactory
    clock: Callable[[], datetime] = field(default=_utcnow)
    today: Callable[[], date] = field(default=date.today)
    guard: auth.LoginGuard = field(default_factory=auth.LoginGuard)

    @property
    def strict(self) -> bool:
        """Refuse development accounts (every environment but development)."""
        return not self.settings.development

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=self.settings.session_idle_minutes)

    @property
    def secret_key(self) -> str:
        return self.settings.secret("secret_key")

    @property
    def jwt_key(self) -> str:
        return self.settings.secret("jwt_signing_key")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.tp
    return state


State = Annotated[AppState, Depends(get_state)]

bearer = HTTPBearer(
    auto_error=False,
    description="An API key (tp_...) or a JWT from POST /api/v1/auth/token",
)
session_cookie = APIKeyCookie(
    name=auth.SESSION_COOKIE,
    auto_error=False,
    description="Browser session from POST /api/v1/auth/login; unsafe methods also need "
    f"the {auth.CSRF_HEADER} header",
)


def request_id(request: Request) -> str:
    rid: str = getattr(request.state, "request_id", "") or "-"
    return rid


def client_address(request: Request) -> str:
    """The peer address the login throttle counts (behind a proxy: its forwarded one)."""
    return request.client.host if request.client else "-"


def actor_from_session(state: AppState, token: str) -> Actor:
    """The actor of a browser session (idle timeout, token version, dev accounts)."""
    with state.uow_factory() as uow:
        actor = auth.actor_from_session(
            uow, state.secret_key, token, state.clock(), state.idle, strict=state.strict
        )
        uow.commit()
    return actor


def current_actor(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: Annotated[str | None, Depends(session_cookie)],
) -> Actor:
    """The authenticated user, from a bearer token or the session cookie; else 401."""
    now = state.clock()
    with state.uow_factory() as uow:
        if credentials is not None:
            token = credentials.credentials
            if token.startswith(auth.API_KEY_PREFIX):
                actor = auth.actor_from_api_key(
                    uow, state.secret_key, token, now, strict=state.strict
                )
            else:
                actor = auth.actor_from_jwt(uow, state.jwt_key, token, now, strict=state.strict)
        elif session:
            actor = auth.actor_from_session(
                uow, state.secret_key, session, now, state.idle, strict=state.strict
            )
            presented = request.headers.get(auth.CSRF_HEADER)
            if request.method not in SAFE_METHODS and not auth.csrf_ok(
                state.secret_key, session, presented
            ):
                raise auth.Forbidden(f"cookie-authenticated changes need the {auth.CSRF_HEADER}")
        else:
            raise auth.Unauthenticated("authentication required: a bearer token or a session")
        uow.commit()
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def action(name: str) -> Any:
    """Dependency: an audited :class:`Call` for ``name``, authorised before the body is used.

    A refused role gets 403 and leaves a ``denied`` audit event naming the record id in
    the path, if any.
    """
    if name not in auth.PERMISSIONS:
        raise AssertionError(f"unknown action {name!r}: add it to services.auth.PERMISSIONS")

    def dependency(request: Request, state: State, actor: CurrentActor) -> Call:
        call = Call(state.uow_factory, actor, name, request_id(request), state.clock())
        request.state.audit_call = call  # the audit middleware records what it does not
        for key, raw in request.path_params.items():
            if key.endswith("_id"):
                try:
                    found = UUID(str(raw))
                except ValueError:
                    continue
                call.note.touch(found if key == "patient_id" else None, found)
        call.authorise()
        return call

    return Depends(dependency)


def window(
    limit: Annotated[int, Query(ge=1, le=200, description="page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")] = 0,
) -> Window:
    return Window(limit=limit, offset=offset)


Paging = Annotated[Window, Depends(window)]
