"""CDS Hooks in production: the jti replay store shared by every worker, idempotent hook calls.

``cds_jti``: one row per signed call's (issuer, jti), kept until the token expires, so a
token replayed to any worker is refused. ``cds_hook_calls``: the answer given to a
(client, service, hookInstance), so the same call sent again gets the same cards.

Created 2026-12-04.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from triggerpath.adapters.migrations.columns import TS

revision: str = "0004_cds_production"
down_revision: str | None = "0003_security"


def upgrade() -> None:
    """Create the replay store and the hook-call answers (with their expiry indexes)."""
    op.create_table(
        "cds_jti",
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", TS(), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name="pk_cds_jti"),
    )
    op.create_index("ix_cds_jti_expires_at", "cds_jti", ["expires_at"])
    op.create_table(
        "cds_hook_calls",
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS(), nullable=False),
        sa.PrimaryKeyConstraint("client", "service_id", "hook_instance", name="pk_cds_hook_calls"),
    )
    op.create_index("ix_cds_hook_calls_created_at", "cds_hook_calls", ["created_at"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_cds_hook_calls_created_at", table_name="cds_hook_calls")
    op.drop_table("cds_hook_calls")
    op.drop_index("ix_cds_jti_expires_at", table_name="cds_jti")
    op.drop_table("cds_jti")
