"""CDS Hooks in production: replay store across workers, idempotent hook instances (reserved).

Revision ID: 0004_cds_production
Revises: 0003_security
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004_cds_production"
down_revision: str | None = "0003_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved in the chain; filled by the work it is named after."""


def downgrade() -> None:
    """Nothing to undo yet."""
