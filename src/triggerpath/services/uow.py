"""The unit of work the services use: a port, not a database.

``UnitOfWork`` and ``UowFactory`` are the protocols of :mod:`triggerpath.services.ports`,
kept under this name because every service and route annotates with it. The SQLAlchemy
implementation is ``triggerpath.adapters.unit_of_work.SqlUnitOfWork``; entry points get a
factory for it from the composition root, ``triggerpath.bootstrap.uow_factory(engine)``.
"""

from __future__ import annotations

from triggerpath.services.ports import UnitOfWork, UowFactory

__all__ = ["UnitOfWork", "UowFactory"]
