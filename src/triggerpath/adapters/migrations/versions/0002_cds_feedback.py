"""CDS Hooks cards issued and the EHR's feedback on them.

Created 2026-11-21.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from triggerpath.adapters.migrations.columns import TS, BigId

revision: str = "0002_cds_feedback"
down_revision: str | None = "0001_initial"


def upgrade() -> None:
    op.create_table(
        "cds_cards",
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("summary", sa.String(200), nullable=False),
        sa.Column("suggestion_ids", sa.JSON(), nullable=False),
        sa.Column("draft_orders", sa.JSON(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("issued_at", TS(), nullable=False),
        sa.Column("client", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_cds_cards"),
    )
    op.create_index("ix_cds_cards_issued_at", "cds_cards", ["issued_at"])
    op.create_table(
        "cds_feedback",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("card", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_timestamp", TS(), nullable=False),
        sa.Column("received_at", TS(), nullable=False),
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_system", sa.String(255), nullable=True),
        sa.Column("override_code", sa.String(128), nullable=True),
        sa.Column("override_display", sa.String(255), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column("card_code", sa.String(64), nullable=True),
        sa.Column("card_known", sa.Boolean(), nullable=False),
        sa.CheckConstraint("outcome IN ('accepted', 'overridden')", name="ck_cds_feedback_outcome"),
        sa.PrimaryKeyConstraint("id", name="pk_cds_feedback"),
    )
    op.create_index("ix_cds_feedback_card", "cds_feedback", ["card"])


def downgrade() -> None:
    op.drop_index("ix_cds_feedback_card", table_name="cds_feedback")
    op.drop_table("cds_feedback")
    op.drop_index("ix_cds_cards_issued_at", table_name="cds_cards")
    op.drop_table("cds_cards")
