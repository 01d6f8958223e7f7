"""Clinical-record integrity (issue 11): no table change is needed.

The safety kernel's fields (a plan's input, result, ledger and ``stale`` flag; a
session's performer, attestation, dose verdict, ledger, ``dose_exceeded``,
``exceedance_reason`` and deviations; an outcome's ``relation``) live in the versioned
JSON of ``record_versions.data``, so every one of them is part of the record's
append-only history. The ledger query (a patient's active sessions) is served by the
existing ``ix_records_kind_patient`` index. The revision stays in the chain so that
later revisions keep their numbers.

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
    """Nothing to change: see the module docstring."""


def downgrade() -> None:
    """Nothing to undo."""
