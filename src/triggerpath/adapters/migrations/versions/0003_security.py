"""Security hardening: sessions, token versions, login throttling, audit chain (reserved).

Revision ID: 0003_security
Revises: 0002_cds_feedback
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003_security"
down_revision: str | None = "0002_cds_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved in the chain; filled by the work it is named after."""


def downgrade() -> None:
    """Nothing to undo yet."""
