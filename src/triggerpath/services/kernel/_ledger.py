"""The 24-hour dose ledger: local anesthetic recorded for a patient around a time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from triggerpath.domain import integrity as rules
from triggerpath.services.kernel._context import Context
from triggerpath.services.payloads import LedgerEntry
from triggerpath.services.uow import UnitOfWork


def session_ledger(
    uow: UnitOfWork,
    ctx: Context,
    patient_id: UUID,
    at: datetime,
    *,
    exclude: UUID | None = None,
    before_only: bool = False,
) -> list[LedgerEntry]:
    """Local anesthetic of every active session of the patient within the window of ``at``.

    A session counts from ``at`` minus 24 hours to ``at`` plus 24 hours (only up to ``at``
    for a plan made now), so a session documented late still sees the doses given after
    it. ``exclude`` is the session being corrected (its old version must not count).
    """
    start, end = rules.ledger_window(at, ctx.bounds.session.ledger_hours)
    anesthetics = {la.id for la in ctx.kb.injectates.local_anesthetics}
    if before_only:
        end = at
    entries: list[LedgerEntry] = []
    for record in uow.records.near("session", patient_id, start, end):
        if record.id == exclude:
            continue
        data = record.current.data
        performed = datetime.fromisoformat(data["performed_at"])
        entries += [
            LedgerEntry(session_id=record.id, performed_at=performed, agent=agent, mg=mg)
            for agent, mg in (data.get("total_mg_by_agent") or {}).items()
            if agent in anesthetics and mg > 0
        ]
    return entries
