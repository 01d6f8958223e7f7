"""Initial schema: users and credentials, append-only clinical records, audit, policy.

Created 2026-11-21.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from triggerpath.adapters.migrations.columns import TS, BigId

revision: str = "0001_initial"
down_revision: str | None = None

APPEND_ONLY = ("record_versions", "audit_events", "policy_versions")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.CheckConstraint(
            _in("role", ("clinician", "nurse", "viewer", "admin")), name="ck_users_role"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    for table in ("api_keys", "web_sessions"):
        op.create_table(
            table,
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            *(
                [
                    sa.Column("name", sa.String(64), nullable=False),
                    sa.Column("prefix", sa.String(16), nullable=False),
                ]
                if table == "api_keys"
                else []
            ),
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Column("created_at", TS(), nullable=False),
            sa.Column("expires_at", TS(), nullable=table == "api_keys"),
            sa.Column("revoked_at", TS(), nullable=True),
            sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=f"fk_{table}_user_id_users"),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            sa.UniqueConstraint("digest", name=f"uq_{table}_digest"),
        )
        op.create_index(f"ix_{table}_user_id", table, ["user_id"])

    kinds = ("patient", "episode", "assessment", "plan", "session", "outcome", "document")
    statuses = ("active", "entered_in_error")
    op.create_table(
        "records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("mrn", sa.String(64), nullable=True),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS(), nullable=False),
        sa.CheckConstraint(_in("kind", kinds), name="ck_records_kind"),
        sa.CheckConstraint(_in("status", statuses), name="ck_records_status"),
        sa.CheckConstraint("current_version >= 1", name="ck_records_version"),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.username"], name="fk_records_created_by_users"
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["records.id"], name="fk_records_parent_id_records"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["records.id"], name="fk_records_patient_id_records"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_records"),
        sa.UniqueConstraint("mrn", name="uq_records_mrn"),
    )
    op.create_index("ix_records_kind_patient", "records", ["kind", "patient_id", "created_at"])
    op.create_index("ix_records_parent", "records", ["parent_id", "kind"])

    op.create_table(
        "record_versions",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("recorded_at", TS(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("signed_at", TS(), nullable=True),
        sa.Column("signed_by", sa.String(64), nullable=True),
        sa.CheckConstraint(_in("status", statuses), name="ck_record_versions_status"),
        sa.CheckConstraint("version >= 1", name="ck_record_versions_version"),
        sa.CheckConstraint("version = 1 OR reason IS NOT NULL", name="ck_record_versions_reason"),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name="fk_record_versions_record_id_records"
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.username"], name="fk_record_versions_recorded_by_users"
        ),
        sa.ForeignKeyConstraint(
            ["signed_by"], ["users.username"], name="fk_record_versions_signed_by_users"
        ),
        sa.PrimaryKeyConstraint("record_id", "version", name="pk_record_versions"),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", TS(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    for col in ("at", "actor", "action", "patient_id"):
        op.create_index(f"ix_audit_events_{col}", "audit_events", [col])

    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("recorded_at", TS(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.username"], name="fk_policy_versions_recorded_by_users"
        ),
        sa.PrimaryKeyConstraint("version", name="pk_policy_versions"),
    )
    _append_only_triggers()


def _append_only_triggers() -> None:
    """Refuse UPDATE and DELETE on the append-only tables, whoever connects."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION triggerpath_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME
                USING ERRCODE = 'raise_exception';
            END $$
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION triggerpath_append_only()"
            )
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        elif dialect == "sqlite":
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS triggerpath_append_only()")
    for table in (
        "policy_versions",
        "audit_events",
        "record_versions",
        "records",
        "web_sessions",
        "api_keys",
        "users",
    ):
        op.drop_table(table)
