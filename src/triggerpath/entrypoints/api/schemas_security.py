"""Request and response bodies of the security endpoints (issue 14)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from triggerpath.entrypoints.api.schemas import Out
from triggerpath.services.model import Role
from triggerpath.services.passwords import MAX_LENGTH, MIN_LENGTH
from triggerpath.services.payloads import Payload


class PasswordChange(Payload):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description=f"{MIN_LENGTH}-{MAX_LENGTH} characters, not a common or breached password",
    )


class PasswordReset(Payload):
    reset_token: str = Field(min_length=8, max_length=128, description="from the admin reset")
    new_password: str = Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)


class UserChange(Payload):
    """What an admin may change about a user: never their password (use a reset)."""

    role: Role | None = None
    active: bool | None = None


class ResetIssued(Out):
    user_id: UUID
    username: str
    reset_token: str = Field(description="shown once: give it to the user, who chooses a password")
    expires_at: datetime
