"""The 24-hour dose ledger: local anesthetic recorded for a patient around a time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from triggerpath.services.kernel._context import Context
from triggerpath.services.payloads import LedgerEntry


def session_ledger(
    ctx: Context, patient_id: UUID, start: datetime, end: datetime, exclude: UUID | None = None
) -> list[LedgerEntry]:
    """Local anesthetic of every active session of the patient performed from ``start`` to ``end``.

    A session counts within 24 hours either side of its time (:meth:`Context.ledger_window`;
    only up to now for a plan made now), so a session documented late still sees the doses
    given after it. ``exclude`` is the session being corrected (its old version must not count).
    """
    anesthetics = {la.id for la in ctx.kb.injectates.local_anesthetics}
    entries: list[LedgerEntry] = []
    for record in ctx.uow.records.near("session", patient_id, start, end):
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
