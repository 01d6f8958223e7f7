"""Clinical-record integrity: plan/session/outcome fields the safety kernel needs (reserved).

Revision ID: 0005_record_integrity
Revises: 0004_cds_production
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005_record_integrity"
down_revision: str | None = "0004_cds_production"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved in the chain; filled by the work it is named after."""


def downgrade() -> None:
    """Nothing to undo yet."""
