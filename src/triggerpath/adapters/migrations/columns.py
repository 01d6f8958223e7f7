"""Column types the migration scripts share, so every revision spells them the same way.

Only types live here, never a table or a step: what each revision creates or alters stays
written out in that revision, frozen as it shipped.
"""

from __future__ import annotations

import sqlalchemy as sa

#: 64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY (its rowid) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def TS() -> sa.DateTime:  # noqa: N802 - reads like a type in the column lists
    """UTC timestamps (the ORM's UTCDateTime stores this type)."""
    return sa.DateTime(timezone=True)
