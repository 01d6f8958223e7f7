"""Signatures, addenda and void (issue 17 §4): addenda on signed records.

A record is signed by appending a version that carries ``signed_at`` and ``signed_by``
(the columns exist since 0001); the signer re-entered their password first (checked by the
services, counted like a sign-in). A void is the existing ``entered_in_error`` version
with its reason. What a signed record still accepts is an *addendum*: text added after
signing, with its author, role and time, naming the version it was written against.

``record_addenda`` is append-only like ``record_versions`` (triggers refuse UPDATE and
DELETE), so neither a signed version nor its addenda can be altered afterwards.

Created 2026-12-08.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from triggerpath.adapters.migrations.columns import TS, BigId

revision: str = "0007_signatures"
down_revision: str | None = "0006_patient_identity"

TABLE = "record_addenda"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("written_at", TS(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_record_addenda"),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name="fk_record_addenda_record_id_records"
        ),
        sa.ForeignKeyConstraint(
            ["author"], ["users.username"], name="fk_record_addenda_author_users"
        ),
        sa.CheckConstraint("record_version >= 1", name="ck_record_addenda_version"),
    )
    op.create_index("ix_record_addenda_record_id", TABLE, ["record_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":  # the function is 0001's
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION triggerpath_append_only()"
        )
    elif dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{event.lower()} BEFORE {event} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, 'table {TABLE} is append-only'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
    elif dialect == "sqlite":
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{event}")
    op.drop_index("ix_record_addenda_record_id", table_name=TABLE)
    op.drop_table(TABLE)
