"""The composition root: where the services' ports meet their adapters.

Entry points (CLI, API, web) call these functions once at start-up and pass what they
return to the services; nothing below the entry points imports an adapter::

    entrypoints ──> bootstrap ──> adapters (SQLAlchemy, FHIR, documents)
         │
         └──> services ──> ports (typing.Protocol) <── implemented by adapters

Keep it small: wiring only, no rules.
"""

from __future__ import annotations

import sqlalchemy as sa

from triggerpath.adapters.unit_of_work import SqlUnitOfWork
from triggerpath.services.ports import UnitOfWork, UowFactory


def uow_factory(engine: sa.Engine) -> UowFactory:
    """A factory of SQL units of work on ``engine``, typed as the services' port."""

    def make() -> UnitOfWork:
        return SqlUnitOfWork(engine)

    return make


__all__ = ["SqlUnitOfWork", "uow_factory"]
