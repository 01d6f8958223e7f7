"""Patient identity (issue 17 §1): names and date of birth, searchable in the index row.

A patient's identity is part of its versioned content (``record_versions.data``: family
name, given name(s), date of birth, sex, MRN); this revision adds the index columns that
make it searchable, as ``mrn`` already is:

- ``records.family_name``, ``records.given_name``, ``records.birth_date``: the current
  version's values (null for other kinds);
- ``records.name_key``: both names case- and accent-folded (domain.identity.search_key),
  searched word by word;
- indexes on (kind, birth_date) and (kind, name_key).

Patients registered before this revision have no names and only a year of birth. Their
columns stay null (a name is never invented); every screen and document shows them as
"name not recorded" in the banner, and the next correction of such a patient must supply
the names and date of birth (a correction is a new write and meets the identity rule).
Where a stored version already carries identity fields (written by a newer build before a
downgrade and re-upgrade), they are back-filled from the current version.

Downgrade drops the index columns only: versions are append-only, so the names stay in the
stored content, and a build older than 0006 (whose patient schema has no names) cannot read
a patient written with names. Downgrade only to restore a backup taken before the upgrade.

Created 2026-12-08.
"""

from __future__ import annotations

import unicodedata
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "0006_patient_identity"
down_revision: str | None = "0005_record_integrity"


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("family_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("given_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("name_key", sa.String(201), nullable=True))
    op.create_index("ix_records_kind_birth_date", "records", ["kind", "birth_date"])
    op.create_index("ix_records_kind_name_key", "records", ["kind", "name_key"])
    _backfill_patients()


def _fold(*parts: str | None) -> str | None:
    """domain.identity.search_key, frozen here as this revision shipped."""
    text = " ".join(p for p in parts if p)
    folded = unicodedata.normalize("NFKD", text.casefold())
    key = " ".join("".join(c for c in folded if not unicodedata.combining(c)).split())
    return key or None


def _backfill_patients() -> None:
    bind = op.get_bind()
    records = sa.table(
        "records",
        sa.column("id", sa.Uuid()),
        sa.column("kind", sa.String()),
        sa.column("current_version", sa.Integer()),
        sa.column("family_name", sa.String()),
        sa.column("given_name", sa.String()),
        sa.column("birth_date", sa.Date()),
        sa.column("name_key", sa.String()),
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
        .where(records.c.kind == "patient")
    ).all()
    for record_id, data in rows:
        family, given = data.get("family_name"), data.get("given_name")
        born = data.get("birth_date")
        if not (family or given or born):
            continue  # a legacy patient: no name recorded, none invented
        bind.execute(
            records.update()
            .where(records.c.id == record_id)
            .values(
                family_name=family,
                given_name=given,
                birth_date=date.fromisoformat(born) if born else None,
                name_key=_fold(family, given),
            )
        )


COLUMNS = ("name_key", "birth_date", "given_name", "family_name")


def downgrade() -> None:
    """Drop the index columns (the identity stays in the append-only versions' content)."""
    op.drop_index("ix_records_kind_name_key", table_name="records")
    op.drop_index("ix_records_kind_birth_date", table_name="records")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite >= 3.35 drops a plain column in place; a batch copy of ``records`` would
        # have to drop the table that record_versions' foreign keys point at
        for column in COLUMNS:
            op.execute(f"ALTER TABLE records DROP COLUMN {column}")
        return
    for column in COLUMNS:
        op.drop_column("records", column)
