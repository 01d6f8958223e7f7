"""Database tables (SQLAlchemy 2 Core), kept out of the domain.

The domain and the services never import this module's tables; the repositories
(:mod:`triggerpath.adapters.repository`) translate rows to plain objects.

Clinical records are stored as an append-only history:

- ``records`` is the index of every record (patient, episode, assessment, plan,
  session, outcome, document): its kind, its patient and parent, and a pointer to its
  current version. The pointer is the optimistic-concurrency guard: a writer moves it
  from the version it read to the next one, and a writer who read an older version
  moves nothing and gets a conflict.
- ``record_versions`` holds every version ever written (content, who, when, why,
  signature). Rows are never updated or deleted; the migrations install triggers that
  refuse UPDATE and DELETE on it and on ``audit_events``.

The schema itself is created by the Alembic migrations shipped in
``triggerpath/adapters/migrations``; a test checks the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; pass an aware UTC timestamp")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Autoincrementing 64-bit key (SQLite only autoincrements an INTEGER PRIMARY KEY).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

ROLES = ("clinician", "nurse", "viewer", "admin")
KINDS = ("patient", "episode", "assessment", "plan", "session", "outcome", "document")
STATUSES = ("active", "entered_in_error")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
    # security (migration 0003): credentials end when token_version moves on; a pending
    # admin reset; the per-account login throttle; accounts made by development tooling
    sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("reset_digest", sa.String(64), nullable=True),
    sa.Column("reset_expires_at", UTCDateTime(), nullable=True),
    sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime(), nullable=True),
    sa.Column("dev_only", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.CheckConstraint(_in("role", ROLES), name="role"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_seen_at", UTCDateTime(), nullable=True),
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("patient_id", sa.Uuid(), sa.ForeignKey("records.id"), nullable=False),
    sa.Column("parent_id", sa.Uuid(), sa.ForeignKey("records.id"), nullable=True),
    sa.Column("mrn", sa.String(64), nullable=True, unique=True),
    sa.Column("current_version", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # the clinical time of the current version (a session's performed_at), for the ledger
    sa.Column("occurred_at", UTCDateTime(), nullable=True),
    # patient identity (migration 0006): the current version's names and date of birth, for
    # search; null for other kinds and for patients registered before identity was kept
    sa.Column("family_name", sa.String(100), nullable=True),
    sa.Column("given_name", sa.String(100), nullable=True),
    sa.Column("birth_date", sa.Date(), nullable=True),
    sa.Column("name_key", sa.String(201), nullable=True),
    sa.CheckConstraint(_in("kind", KINDS), name="kind"),
    sa.CheckConstraint(_in("status", STATUSES), name="status"),
    sa.CheckConstraint("current_version >= 1", name="version"),
    sa.Index("ix_records_kind_patient", "kind", "patient_id", "created_at"),
    sa.Index("ix_records_parent", "parent_id", "kind"),
    sa.Index("ix_records_kind_patient_occurred", "kind", "patient_id", "occurred_at"),
    sa.Index("ix_records_kind_birth_date", "kind", "birth_date"),
    sa.Index("ix_records_kind_name_key", "kind", "name_key"),
)

record_versions = sa.Table(
    "record_versions",
    metadata,
    sa.Column("record_id", sa.Uuid(), sa.ForeignKey("records.id"), primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("recorded_by", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("signed_at", UTCDateTime(), nullable=True),
    sa.Column("signed_by", sa.String(64), sa.ForeignKey("users.username"), nullable=True),
    sa.CheckConstraint(_in("status", STATUSES), name="status"),
    sa.CheckConstraint("version >= 1", name="version"),
    sa.CheckConstraint("version = 1 OR reason IS NOT NULL", name="reason"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=True, index=True),
    sa.Column("role", sa.String(16), nullable=True),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("patient_id", sa.Uuid(), nullable=True, index=True),
    sa.Column("record_id", sa.Uuid(), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    # migration 0003: patients a list/search returned, and the hash chain
    sa.Column("patient_ids", sa.JSON(), nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=True),
    sa.Column("hash", sa.String(64), nullable=True),
)

policy_versions = sa.Table(
    "policy_versions",
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("recorded_by", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
)

# Addenda on signed records (migration 0007): text added after signing, never changed.
record_addenda = sa.Table(
    "record_addenda",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("record_id", sa.Uuid(), sa.ForeignKey("records.id"), nullable=False, index=True),
    sa.Column("record_version", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("author", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("written_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("record_version >= 1", name="version"),
)

#: Tables whose rows are never updated or deleted (enforced by triggers).
APPEND_ONLY = ("record_versions", "audit_events", "policy_versions", "record_addenda")

# CDS Hooks: cards TriggerPath issued (with their evaluation trace) and the EHR's feedback.
# Both are append-only too: feedback is evidence of how clinicians used the advice.
cds_cards = sa.Table(
    "cds_cards",
    metadata,
    sa.Column("uuid", sa.String(64), primary_key=True),
    sa.Column("service_id", sa.String(64), nullable=False),
    sa.Column("hook_instance", sa.String(128), nullable=False),
    sa.Column("patient_id", sa.String(128), nullable=True),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("indicator", sa.String(16), nullable=False),
    sa.Column("summary", sa.String(200), nullable=False),
    sa.Column("suggestion_ids", sa.JSON(), nullable=False),
    sa.Column("draft_orders", sa.JSON(), nullable=False),
    sa.Column("trace", sa.JSON(), nullable=False),
    sa.Column("issued_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("client", sa.String(255), nullable=False),
)

cds_feedback = sa.Table(
    "cds_feedback",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("card", sa.String(64), nullable=False, index=True),
    sa.Column("service_id", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("outcome_timestamp", UTCDateTime(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("client", sa.String(255), nullable=False),
    sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
    sa.Column("override_system", sa.String(255), nullable=True),
    sa.Column("override_code", sa.String(128), nullable=True),
    sa.Column("override_display", sa.String(255), nullable=True),
    sa.Column("user_comment", sa.Text(), nullable=True),
    sa.Column("card_code", sa.String(64), nullable=True),
    sa.Column("card_known", sa.Boolean(), nullable=False),
    sa.CheckConstraint(_in("outcome", ("accepted", "overridden")), name="outcome"),
)

# CDS Hooks in production (migration 0004): the jti replay store shared by every worker,
# and the answer given to each hook call so a repeated hookInstance gets the same cards.
cds_jti = sa.Table(
    "cds_jti",
    metadata,
    sa.Column("issuer", sa.String(255), primary_key=True),
    sa.Column("jti", sa.String(255), primary_key=True),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

cds_hook_calls = sa.Table(
    "cds_hook_calls",
    metadata,
    sa.Column("client", sa.String(255), primary_key=True),
    sa.Column("service_id", sa.String(64), primary_key=True),
    sa.Column("hook_instance", sa.String(128), primary_key=True),
    sa.Column("request_digest", sa.String(64), nullable=False),
    sa.Column("response", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
)
