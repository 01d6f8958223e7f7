"""Unit of work: one database transaction, with the repositories that work inside it.

::

    with uow_factory() as uow:
        uow.records.add(...)
        uow.audit.add(...)
        uow.commit()          # nothing is kept unless this runs

Leaving the block without ``commit()`` (an exception, an early return) rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import sqlalchemy as sa

from triggerpath.adapters.repository import SqlAudit, SqlPolicy, SqlRecords, SqlUsers


class UnitOfWork:
    records: SqlRecords
    users: SqlUsers
    audit: SqlAudit
    policy: SqlPolicy

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None

    def __enter__(self) -> UnitOfWork:
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


UowFactory = Callable[[], UnitOfWork]


def uow_factory(engine: sa.Engine) -> UowFactory:
    return lambda: UnitOfWork(engine)
