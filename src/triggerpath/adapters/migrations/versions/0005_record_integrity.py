"""Clinical-record integrity (issue 11): the clinical time of a record in its index row.

The safety kernel checks every session against the 24-hour ledger of the patient's
recorded sessions. ``records.occurred_at`` holds the clinical time of the current version
(a session's ``performed_at``; null for kinds without one) and the index
``ix_records_kind_patient_occurred`` serves "this patient's sessions between two times",
so the ledger reads the few sessions near a time instead of every session the patient
ever had. Existing sessions are back-filled from their current version.

Everything else the kernel stores (a plan's input, result, ledger and ``stale`` flag; a
session's performer, attestation, dose verdict, ``dose_exceeded``, exceedance reason and
deviations; an outcome's ``relation``) is part of the versioned JSON content, so it is in
the append-only history.

Created 2026-12-04.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005_record_integrity"
down_revision: str | None = "0004_cds_production"


def upgrade() -> None:
    op.add_column("records", sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_records_kind_patient_occurred", "records", ["kind", "patient_id", "occurred_at"]
    )
    _backfill_sessions()


def _backfill_sessions() -> None:
    """Set ``occurred_at`` of every session from its current version's ``performed_at``."""
    bind = op.get_bind()
    records = sa.table(
        "records",
        sa.column("id", sa.Uuid()),
        sa.column("kind", sa.String()),
        sa.column("current_version", sa.Integer()),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
    )
    versions = sa.table(
        "record_versions",
        sa.column("record_id", sa.Uuid()),
        sa.column("version", sa.Integer()),
        sa.column("data", sa.JSON()),
    )
    rows = bind.execute(
        sa.select(records.c.id, versions.c.data)
        .join(
            versions,
            sa.and_(
                versions.c.record_id == records.c.id,
                versions.c.version == records.c.current_version,
            ),
        )
        .where(records.c.kind == "session")
    ).all()
    sqlite = bind.dialect.name == "sqlite"
    for record_id, data in rows:
        when = datetime.fromisoformat(data["performed_at"]).astimezone(UTC)
        stored = when.replace(tzinfo=None) if sqlite else when  # as orm.UTCDateTime stores it
        bind.execute(records.update().where(records.c.id == record_id).values(occurred_at=stored))


def downgrade() -> None:
    op.drop_index("ix_records_kind_patient_occurred", table_name="records")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("occurred_at")
