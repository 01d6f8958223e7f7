"""Administration (role ``admin``): users and API keys, the clinic policy, the audit trail.

Every action is audited with its target: the user's id is the event's ``record_id``.
Admins never set or learn a password: ``POST /api/v1/users/{id}/password-reset`` issues
a one-time token instead (see :mod:`triggerpath.services.users`).
"""

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from triggerpath.entrypoints.api import schemas as s
from triggerpath.entrypoints.api import schemas_security as ss
from triggerpath.entrypoints.api.deps import Paging, State, action
from triggerpath.entrypoints.api.problems import PROBLEM_RESPONSES
from triggerpath.services import clinical, users
from triggerpath.services.audit import AuditNote, Call
from triggerpath.services.model import AuditQuery
from triggerpath.services.payloads import PolicyUpdate
from triggerpath.services.uow import UnitOfWork

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)


def _iso_only(value: object) -> object:
    """The OpenAPI document says date-time: refuse the bare numbers pydantic would take."""
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*", value):
        raise ValueError("expected an ISO 8601 date-time with a time zone")
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]


class AuditFilter(BaseModel):
    """The audit trail's filters, as query parameters; each one is a field of ``AuditQuery``."""

    patient_id: UUID | None = None
    actor: str | None = Field(default=None, max_length=64)
    action: str | None = Field(default=None, max_length=64, description="exact, or prefix*")
    outcome: str | None = Field(default=None, max_length=16)
    request_id: str | None = Field(default=None, max_length=64)
    since: IsoTime | None = None
    until: IsoTime | None = None


@router.post("/users", status_code=201, response_model=s.UserPublic, tags=["users"])
def create_user(body: s.UserCreate, call: Annotated[Call, action("user.create")]) -> s.UserPublic:
    """Create a user; without a password it is a system account (API keys only).

    Prefer creating people without a password and issuing a reset token: then only
    they ever know their password.
    """

    def run(uow: UnitOfWork, note: AuditNote) -> s.UserPublic:
        user = users.create_user(
            uow,
            username=body.username,
            role=body.role,
            password=body.password,
            now=call.now,
            created_by=call.actor.username,
        )
        note.touch(None, user.id)
        return s.user_view(user)

    return call.run(run)


@router.get("/users", response_model=s.Page[s.UserPublic], tags=["users"])
def list_users(paging: Paging, call: Annotated[Call, action("user.list")]) -> Any:
    def run(uow: UnitOfWork, note: AuditNote) -> dict[str, Any]:
        items, total = users.list_users(uow, paging)
        return s.page_of([s.user_view(u) for u in items], total, paging)

    return call.run(run)


@router.get("/users/{user_id}", response_model=s.UserPublic, tags=["users"])
def get_user(user_id: UUID, call: Annotated[Call, action("user.read")]) -> s.UserPublic:
    return call.run(lambda uow, note: s.user_view(users.get_user(uow, user_id)))


@router.patch("/users/{user_id}", response_model=s.UserPublic, tags=["users"])
def update_user(
    user_id: UUID, body: ss.UserChange, call: Annotated[Call, action("user.update")]
) -> s.UserPublic:
    """Change a user's role, or deactivate or reactivate them (never your own).

    Either change ends every session and token the user held. Passwords are not set
    here: issue a reset token (``POST /api/v1/users/{user_id}/password-reset``).
    """
    return call.run(
        lambda uow, note: s.user_view(
            users.update_user(uow, user_id, actor=call.actor, role=body.role, active=body.active)
        )
    )


@router.post(
    "/users/{user_id}/password-reset",
    status_code=201,
    response_model=ss.ResetIssued,
    tags=["users"],
)
def reset_password(
    user_id: UUID, state: State, call: Annotated[Call, action("user.reset_password")]
) -> ss.ResetIssued:
    """Clear a user's password and issue a one-time reset token (shown in this response only).

    The account cannot act until its user chooses a password with the token
    (``POST /api/v1/auth/password-reset``); every session and token it held ends now.
    """

    def run(uow: UnitOfWork, note: AuditNote) -> ss.ResetIssued:
        user, token, expires = users.reset_password(
            uow, state.secret_key, call.actor, user_id, call.now
        )
        return ss.ResetIssued(
            user_id=user.id, username=user.username, reset_token=token, expires_at=expires
        )

    return call.run(run)


@router.post(
    "/users/{user_id}/api-keys",
    status_code=201,
    response_model=s.ApiKeyCreated,
    tags=["users"],
)
def create_api_key(
    user_id: UUID,
    body: s.ApiKeyCreate,
    state: State,
    call: Annotated[Call, action("user.api_key.create")],
) -> s.ApiKeyCreated:
    """Issue an API key (bearer token); the token is shown in this response only."""

    def run(uow: UnitOfWork, note: AuditNote) -> s.ApiKeyCreated:
        key, token = users.create_api_key(
            uow,
            state.secret_key,
            user_id,
            name=body.name,
            now=call.now,
            expires_at=body.expires_at,
        )
        return s.ApiKeyCreated(**s.api_key_view(key).model_dump(), token=token)

    return call.run(run)


@router.delete("/users/{user_id}/api-keys/{key_id}", status_code=204, tags=["users"])
def revoke_api_key(
    user_id: UUID, key_id: UUID, call: Annotated[Call, action("user.api_key.revoke")]
) -> Response:
    call.run(lambda uow, note: users.revoke_api_key(uow, user_id, key_id, call.now))
    return Response(status_code=204)


@router.get("/audit", response_model=s.Page[s.AuditEventPublic], tags=["audit"])
def list_audit(
    paging: Paging,
    call: Annotated[Call, action("audit.list")],
    filters: Annotated[AuditFilter, Query()],
) -> Any:
    """The audit trail, oldest first, filtered."""
    query = AuditQuery(**filters.model_dump())

    def run(uow: UnitOfWork, note: AuditNote) -> dict[str, Any]:
        items, total = uow.audit.page(query, paging)
        return s.page_of([s.audit_view(e) for e in items], total, paging)

    return call.run(run)


@router.get("/settings/policy", response_model=s.PolicyPublic, tags=["settings"])
def get_policy(call: Annotated[Call, action("policy.read")]) -> s.PolicyPublic:
    """The clinic policy the engine applies (version 0 = the built-in defaults)."""

    def run(uow: UnitOfWork, note: AuditNote) -> s.PolicyPublic:
        version, policy = clinical.current_policy(uow)
        return s.PolicyPublic(version=version, policy=policy)

    return call.run(run)


@router.put("/settings/policy", response_model=s.PolicyPublic, tags=["settings"])
def update_policy(
    body: PolicyUpdate, call: Annotated[Call, action("policy.update")]
) -> s.PolicyPublic:
    """Set the clinic policy: a new version, with the reason; send the version you read."""

    def run(uow: UnitOfWork, note: AuditNote) -> s.PolicyPublic:
        version, policy = clinical.update_policy(
            uow,
            call.actor,
            expected=body.version,
            reason=body.reason,
            policy=body.policy,
            now=call.now,
        )
        return s.PolicyPublic(version=version, policy=policy)

    return call.run(run)
