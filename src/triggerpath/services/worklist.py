"""The worklist use case: read the open episodes through the ports, let the domain decide.

:func:`worklist` reads every active patient, open episode, assessment, plan, session and
outcome once per kind (six queries, not one per episode), assembles each episode as the
course page does (:func:`triggerpath.services.episodes.assemble`, the same
:func:`~triggerpath.services.episodes.course_episode`), and hands the facts to the pure
:func:`triggerpath.domain.worklist.build_worklist` with the clinic policy and ``as_of``.
Entry points (REST ``GET /api/v1/worklist``, the web home page) then :func:`select`.

The audit event of the call names the patients whose items were returned (ids only).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from uuid import UUID

from triggerpath.domain.worklist import EpisodeFacts, OpenRecord, Worklist, build_worklist, select
from triggerpath.errors import StoredUnderOtherSchema
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.audit import AuditNote
from triggerpath.services.episodes import Bundle, assemble, course_episode
from triggerpath.services.kernel import current_policy
from triggerpath.services.model import Kind, Record, RecordQuery, Window
from triggerpath.services.payloads import PlanData, SessionData
from triggerpath.services.uow import UnitOfWork

#: The most records of one kind the worklist reads (a clinic's active records, not an archive).
MAX_RECORDS = 50_000

__all__ = ["MAX_RECORDS", "select", "worklist"]


def _all(uow: UnitOfWork, kind: Kind) -> list[Record]:
    found, _ = uow.records.page(RecordQuery(kind), Window(limit=MAX_RECORDS))
    return found


def _children(items: list[Record]) -> dict[UUID, list[Record]]:
    out: dict[UUID, list[Record]] = defaultdict(list)
    for r in items:
        if r.parent_id is not None:
            out[r.parent_id].append(r)
    return out


def _bundles(uow: UnitOfWork) -> list[Bundle]:
    patients = {p.id: p for p in _all(uow, "patient")}
    episodes = [
        e
        for e in _all(uow, "episode")
        if e.current.data.get("status", "open") == "open" and e.patient_id in patients
    ]
    assessments = _children(_all(uow, "assessment"))
    plans = _children(_all(uow, "plan"))
    sessions = _children(_all(uow, "session"))
    outcomes = _children(_all(uow, "outcome"))
    out = []
    for e in episodes:
        mine = assessments.get(e.id, [])
        out.append(
            assemble(
                patients[e.patient_id],
                e,
                mine,
                {a.id: plans.get(a.id, []) for a in mine},
                sessions.get(e.id, []),
                outcomes.get(e.id, []),
                [],  # documents: the course needs only the plan summary, not for these items
            )
        )
    return out


def _open_records(b: Bundle) -> list[OpenRecord]:
    carried = {b.session_data(s).plan_id for s in b.sessions}
    out: list[OpenRecord] = []
    for a in b.assessments:
        on = b.assessment(a).as_of
        out.append(OpenRecord("assessment", a.id, a.version, a.created_by, on, a.signed))
    for p in b.all_plans:
        data = PlanData.model_validate(p.current.data)
        out.append(
            OpenRecord(
                "plan",
                p.id,
                p.version,
                p.created_by,
                p.created_at.date(),
                p.signed,
                stale=data.stale,
                planned_for=data.planned_for,
                carried_out=p.id in carried,
            )
        )
    for s in b.sessions:
        sd: SessionData = b.session_data(s)
        owner = sd.performer or sd.operator
        unattested = sd.attestation == "unattested"
        on = sd.performed_at.date()
        out.append(OpenRecord("session", s.id, s.version, owner, on, s.signed, False, unattested))
    return out


def patient_label(data: dict[str, object]) -> str | None:
    """Name and date (or year) of birth as recorded, for the row beside the MRN."""
    family, given = data.get("family_name"), data.get("given_name")
    name = ", ".join(str(x) for x in (str(family).upper() if family else None, given) if x)
    born = data.get("birth_date") or data.get("birth_year")
    parts = [p for p in (name, f"born {born}" if born else "") if p]
    return ", ".join(parts) or None


def facts(b: Bundle, kb: Knowledge) -> EpisodeFacts:
    """What the worklist reads of one episode's bundle.

    A record stored under another schema (append-only history is never rewritten) makes the
    episode a draft item naming the field, instead of failing the whole clinic's worklist.
    """
    try:
        return _facts(b, kb)
    except StoredUnderOtherSchema as exc:
        where = ", ".join(exc.fields) or "?"
        return EpisodeFacts(
            patient_id=b.patient.id,
            mrn=b.patient_data.mrn,
            patient_label=patient_label(b.patient.current.data),
            episode_id=b.episode.id,
            opened_by=b.episode.created_by,
            course=None,
            unreadable=where,
        )


def _facts(b: Bundle, kb: Knowledge) -> EpisodeFacts:
    latest = b.latest_assessment
    return EpisodeFacts(
        patient_id=b.patient.id,
        mrn=b.patient_data.mrn,
        patient_label=patient_label(b.patient.current.data),
        episode_id=b.episode.id,
        opened_by=b.episode.created_by,
        course=course_episode(b, kb),
        assessed_by=latest.created_by if latest else None,
        assessed_on=[b.assessment(a).as_of for a in b.assessments],
        records=_open_records(b),
    )


def worklist(uow: UnitOfWork, note: AuditNote, kb: Knowledge, *, as_of: dt.date) -> Worklist:
    """Every work item of the clinic's open episodes as of ``as_of`` (all owners)."""
    _, policy = current_policy(uow)
    found = build_worklist((facts(b, kb) for b in _bundles(uow)), kb, as_of=as_of, policy=policy)
    note.returned([i.patient_id for i in found.items])
    return found
