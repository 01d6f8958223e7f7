"""The SQLAlchemy unit of work: one connection, one transaction, four repositories.

It implements the port :class:`triggerpath.services.ports.UnitOfWork`; nothing in the
services names this class (the composition root, ``triggerpath.bootstrap``, does).
"""

from __future__ import annotations

from types import TracebackType

import sqlalchemy as sa

from triggerpath.adapters.repository import SqlAudit, SqlPolicy, SqlRecords, SqlUsers


class SqlUnitOfWork:
    """A transaction on ``engine``; used once, as a context manager."""

    records: SqlRecords
    users: SqlUsers
    audit: SqlAudit
    policy: SqlPolicy

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None

    def __enter__(self) -> SqlUnitOfWork:
        assert self._conn is None, "a unit of work is used once"
        self._conn = self._engine.connect()
        self._tx = self._conn.begin()
        self.records = SqlRecords(self._conn)
        self.users = SqlUsers(self._conn)
        self.audit = SqlAudit(self._conn)
        self.policy = SqlPolicy(self._conn)
        return self

    def commit(self) -> None:
        assert self._tx is not None
        self._tx.commit()

    def rollback(self) -> None:
        if self._tx is not None and self._tx.is_active:
            self._tx.rollback()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()
