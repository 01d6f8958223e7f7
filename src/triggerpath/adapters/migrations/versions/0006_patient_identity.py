"""Patient identity and clinic-day records (reserved).

Revision ID: 0006_patient_identity
Revises: 0005_record_integrity
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006_patient_identity"
down_revision: str | None = "0005_record_integrity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved in the chain; filled by the work it is named after."""


def downgrade() -> None:
    """Nothing to undo yet."""
