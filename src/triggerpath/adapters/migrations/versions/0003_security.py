"""Security hardening: token versions, sessions, login throttle, audit chain, PG roles.

- ``users``: ``token_version`` (every session and JWT carries the version it was issued
  under; bumping it ends them all), a pending admin reset (``reset_digest``,
  ``reset_expires_at``), the per-account login throttle (``failed_logins``,
  ``locked_until``) and ``dev_only`` (accounts made by development tooling, refused in
  production).
- ``web_sessions``: ``token_version`` and ``last_seen_at`` (idle timeout).
- ``audit_events``: ``patient_ids`` (what a list/search returned) and the hash chain
  (``prev_hash``, ``hash``). Rows written before this revision stay unchained; the chain
  starts at the first event written after it.
- PostgreSQL: an owner role ``triggerpath_owner`` owns the tables and a service role
  ``triggerpath_service`` gets only SELECT and INSERT on the append-only tables
  (see :func:`triggerpath.adapters.pg_roles.apply_pg_privileges`). Roles are
  cluster-global, so their creation is idempotent and safe for many databases migrating
  at once on one server.

Created 2026-12-04.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from triggerpath.adapters.migrations.columns import TS

revision: str = "0003_security"
down_revision: str | None = "0002_cds_feedback"


def _version_column() -> sa.Column[int]:
    return sa.Column("token_version", sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    with op.batch_alter_table("users") as t:
        t.add_column(_version_column())
        t.add_column(sa.Column("reset_digest", sa.String(64), nullable=True))
        t.add_column(sa.Column("reset_expires_at", TS(), nullable=True))
        t.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        t.add_column(sa.Column("locked_until", TS(), nullable=True))
        t.add_column(sa.Column("dev_only", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("web_sessions") as t:
        t.add_column(_version_column())
        t.add_column(sa.Column("last_seen_at", TS(), nullable=True))
    # plain ADD COLUMN (no table rebuild): the append-only triggers stay in place
    op.add_column("audit_events", sa.Column("patient_ids", sa.JSON(), nullable=True))
    op.add_column("audit_events", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_events", sa.Column("hash", sa.String(64), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from triggerpath.adapters.pg_roles import apply_pg_privileges

        apply_pg_privileges(bind)


def downgrade() -> None:
    for column in ("hash", "prev_hash", "patient_ids"):
        op.drop_column("audit_events", column)
    with op.batch_alter_table("web_sessions") as t:
        t.drop_column("last_seen_at")
        t.drop_column("token_version")
    with op.batch_alter_table("users") as t:
        for column in (
            "dev_only",
            "locked_until",
            "failed_logins",
            "reset_expires_at",
            "reset_digest",
            "token_version",
        ):
            t.drop_column(column)
