"""One stored episode of care: its records, its course, its trend (web pages and API).

:func:`load_bundle` reads the patient, episode and every record under it in one unit of
work; :func:`course_episode` turns the stored sessions and follow-up outcomes into the
course engine's :class:`~triggerpath.domain.course.Episode`, so the course report,
response and re-evaluation worksheet are the engine's own (nothing is recomputed here).

How the web app records a course (the services keep sessions and outcomes separately):

- each session's pain before the injection is an ``nrs`` outcome linked to the session with
  relation ``before``; the follow-up visit records ``nrs`` (and ``peg``/``odi``/``ndi``,
  ``relief_days``, ``physical_therapy`` and ``home_exercise`` as 1/0) linked to the session
  with relation ``after`` (or none: :mod:`triggerpath.domain.timeline` decides from the
  times, so a same-day follow-up after the session stays that session's follow-up);
- the session note's first line keeps the technique (guidance, needle, aspiration, twitch).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from triggerpath.domain.course import Episode, PlanSummary, PlanTarget, Session
from triggerpath.domain.episode import MedialBranchBlock
from triggerpath.domain.timeline import (
    OutcomeTime,
    Placement,
    Relation,
    SessionTime,
    assign,
)
from triggerpath.errors import StoredUnderOtherSchema
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services import records
from triggerpath.services.audit import AuditNote
from triggerpath.services.model import Record, Window
from triggerpath.services.payloads import (
    AssessmentData,
    DocumentData,
    OutcomeData,
    PatientData,
    SessionData,
)
from triggerpath.services.uow import UnitOfWork

M = TypeVar("M", bound=BaseModel)


def stored(model: type[M], record: Record) -> M:
    """A stored record's current content as today's model; one that an older build wrote
    and today's schema refuses is :class:`StoredUnderOtherSchema` naming its fields."""
    try:
        return model.model_validate(record.current.data)
    except ValidationError as exc:
        fields = sorted({".".join(str(x) for x in e["loc"]) for e in exc.errors()})
        raise StoredUnderOtherSchema(record.kind, record.id, fields) from None


ALL = Window(limit=500)
PLAN_REQUEST_KIND = "plan_request"
#: session complication (services) -> course complication id (instruments.yaml)
COMPLICATIONS = {
    "vasovagal": "vasovagal",
    "bleeding_or_haematoma": "bruising",
    "post_injection_soreness": "soreness",
    "pneumothorax": "pneumothorax",
    "infection": "infection",
    "nerve_injury": "nerve_injury",
    "allergic_reaction": "allergic_reaction",
    "local_anaesthetic_toxicity": "systemic_toxicity",
    "other": "other",
}
FOLLOW_UP_INSTRUMENTS = (
    "nrs",
    "peg",
    "odi",
    "ndi",
    "relief_days",
    "physical_therapy",
    "home_exercise",
)


#: Technique details are kept as the first line of a session note (see the web forms): the
#: prefix, then a JSON object (older records: ``key: value; key: value.``).
TECHNIQUE_PREFIX = "Technique – "


def technique_line(details: Mapping[str, str]) -> str:
    """The first line of a session note holding the technique details (empty ones left out).

    JSON keeps every value whole, whatever it contains (a needle typed as "27 G; 38 mm"
    used to be cut at the ';'); newlines inside values are escaped, so it stays one line.
    """
    kept = {k: v for k, v in details.items() if v}
    return TECHNIQUE_PREFIX + json.dumps(kept, ensure_ascii=False) if kept else ""


def parse_technique(note: str | None) -> tuple[dict[str, str], str]:
    """(technique details, the rest of the note) from a session note."""
    if not note or not note.startswith(TECHNIQUE_PREFIX):
        return {}, note or ""
    first, _, rest = note.partition("\n")
    body = first.removeprefix(TECHNIQUE_PREFIX)
    if body.startswith("{"):
        try:
            loaded: Any = json.loads(body)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            return {str(k): str(v) for k, v in loaded.items()}, rest.strip()
    details: dict[str, str] = {}
    for part in body.rstrip(".").split("; "):
        key, sep, value = part.partition(": ")
        if sep:
            details[key.strip()] = value.strip()
    return details, rest.strip()


@dataclass
class Bundle:
    patient: Record
    episode: Record
    assessments: list[Record] = field(default_factory=list)
    plans: dict[UUID, list[Record]] = field(default_factory=dict)
    sessions: list[Record] = field(default_factory=list)
    outcomes: list[Record] = field(default_factory=list)
    documents: list[Record] = field(default_factory=list)

    @property
    def patient_data(self) -> PatientData:
        return stored(PatientData, self.patient)

    def assessment(self, record: Record) -> AssessmentData:
        return stored(AssessmentData, record)

    @property
    def latest_assessment(self) -> Record | None:
        return self.assessments[-1] if self.assessments else None

    @property
    def all_plans(self) -> list[Record]:
        out = [p for a in self.assessments for p in self.plans.get(a.id, [])]
        return sorted(out, key=lambda r: r.created_at)

    def plan_request(self, plan_id: UUID) -> dict[str, Any] | None:
        return plan_request_of(self.documents, plan_id)

    def session_data(self, record: Record) -> SessionData:
        return stored(SessionData, record)

    def outcome_data(self, record: Record) -> OutcomeData:
        return stored(OutcomeData, record)


def plan_request_of(documents: list[Record], plan_id: UUID) -> dict[str, Any] | None:
    """The planner's request kept with a plan (a JSON document whose source is the plan)."""
    for doc in reversed(documents):
        data = DocumentData.model_validate(doc.current.data)
        if data.kind == PLAN_REQUEST_KIND and data.source_id == plan_id:
            loaded: Any = json.loads(data.content())
            return loaded if isinstance(loaded, dict) else None
    return None


def load_bundle(uow: UnitOfWork, note: AuditNote, episode_id: UUID) -> Bundle:
    episode = records.get(uow, note, "episode", episode_id)
    patient = records.get(uow, AuditNote(), "patient", episode.patient_id)
    assessments, _ = records.list_(uow, AuditNote(), "assessment", ALL, parent_id=episode.id)
    plans = {
        a.id: records.list_(uow, AuditNote(), "plan", ALL, parent_id=a.id)[0] for a in assessments
    }
    sessions, _ = records.list_(uow, AuditNote(), "session", ALL, parent_id=episode.id)
    outcomes, _ = records.list_(uow, AuditNote(), "outcome", ALL, parent_id=episode.id)
    documents, _ = records.list_(uow, AuditNote(), "document", ALL, parent_id=patient.id)
    note.touch(patient.id, episode.id)
    return assemble(patient, episode, assessments, plans, sessions, outcomes, documents)


def assemble(
    patient: Record,
    episode: Record,
    assessments: list[Record],
    plans: dict[UUID, list[Record]],
    sessions: list[Record],
    outcomes: list[Record],
    documents: list[Record],
) -> Bundle:
    """A bundle from records already read: sessions by time, outcomes by measurement date."""
    b = Bundle(patient=patient, episode=episode, assessments=assessments, plans=plans)
    b.sessions = sorted(sessions, key=lambda r: stored(SessionData, r).performed_at)
    b.outcomes = sorted(
        outcomes,
        key=lambda r: (stored(OutcomeData, r).measured_on, r.created_at),
    )
    b.documents = documents
    return b


# --------------------------------------------------------------------------- course
def _answers(o: OutcomeData, count: int) -> list[int | None] | None:
    if not o.items:
        return None
    return [
        int(o.items[f"item{i + 1}"]) if f"item{i + 1}" in o.items else None for i in range(count)
    ]


#: the note the web session form gave the pre-injection score before outcomes had a relation
LEGACY_BEFORE_NOTE = "before the injection"


def outcome_relation(o: OutcomeData) -> Relation | None:
    """The stored relation, or the one older web records said in their note."""
    if o.relation is not None:
        return o.relation
    return "before" if o.note == LEGACY_BEFORE_NOTE else None


def placements(b: Bundle) -> dict[Hashable, Placement]:
    """Each outcome's session and relation (domain/timeline.py), by outcome record id."""
    sessions = [SessionTime(r.id, b.session_data(r).performed_at) for r in b.sessions]
    outcomes = []
    for rec in b.outcomes:
        o = b.outcome_data(rec)
        # the recording time stands for the measurement time only when it is the same day
        at = rec.created_at if rec.created_at.date() == o.measured_on else None
        outcomes.append(OutcomeTime(rec.id, o.measured_on, o.session_id, outcome_relation(o), at))
    return assign(sessions, outcomes)


@dataclass
class _Readings:
    """The outcomes of one session, split by their relation to it (in measurement order)."""

    before: list[OutcomeData] = field(default_factory=list)
    after: list[OutcomeData] = field(default_factory=list)

    def latest(self, instrument: str, relation: Relation) -> OutcomeData | None:
        items = self.before if relation == "before" else self.after
        found = [o for o in items if o.instrument == instrument]
        return found[-1] if found else None

    def flag(self, instrument: str) -> bool | None:
        """A yes/no answer (physical therapy, home exercise) given at either visit."""
        found = self.latest(instrument, "after") or self.latest(instrument, "before")
        return bool(found.value) if found is not None else None


def readings_by_session(b: Bundle) -> dict[UUID, _Readings]:
    placed = placements(b)
    out: dict[UUID, _Readings] = {r.id: _Readings() for r in b.sessions}
    for rec in b.outcomes:
        where = placed.get(rec.id)
        if where is None or not isinstance(where.session, UUID):
            continue
        target = out[where.session]
        (target.before if where.relation == "before" else target.after).append(b.outcome_data(rec))
    return out


def _plan_summary(b: Bundle) -> PlanSummary | None:
    plans = b.all_plans
    req = b.plan_request(plans[-1].id) if plans else None
    if not req:
        return None
    targets = [
        PlanTarget(
            muscle=t["muscle"],
            side=t.get("side"),
            sites=t.get("sites"),
            volume_ml_per_site=float(t["volume_ml_per_site"])
            if t.get("volume_ml_per_site") is not None
            else None,
        )
        for t in req.get("targets", [])
    ]
    label = injectate_label(req)
    return PlanSummary(targets=targets, injectate=label) if targets or label else None


def _technique(note: str | None) -> tuple[dict[str, Any], str]:
    details, rest = parse_technique(note)
    guidance = details.get("guidance", "")
    twitch = details.get("twitch", "")
    return {
        "guidance": "ultrasound"
        if guidance.startswith("ultrasound")
        else "palpation"
        if guidance.startswith("palpation")
        else None,
        "twitch_elicited": True
        if twitch == "elicited"
        else False
        if twitch == "not elicited"
        else None,
    }, rest


def _clamp(value: float) -> int:
    return max(0, min(10, round(value)))


def course_session(s: SessionData, r: _Readings, pre_nrs: int) -> Session:
    """One course session from a stored session and the outcomes placed at it."""
    post = r.latest("nrs", "after")
    relief = r.latest("relief_days", "after")
    technique, rest = _technique(s.note)
    kwargs: dict[str, Any] = {}
    for instrument, count in (("peg", 3), ("odi", 10), ("ndi", 10)):
        found = r.latest(instrument, "after") or r.latest(instrument, "before")
        if found is not None:
            kwargs[instrument] = _answers(found, count)
    return Session(
        date=s.performed_at.date(),
        pre_nrs=_clamp(pre_nrs),
        post_nrs=_clamp(post.value) if post else None,
        relief_duration_days=relief.value if relief else None,
        physical_therapy=r.flag("physical_therapy"),
        home_exercise=r.flag("home_exercise"),
        complications=[COMPLICATIONS[c] for c in s.complications if c in COMPLICATIONS],
        muscles=list(dict.fromkeys(site.muscle for site in s.sites)),
        injectate=_session_injectate(s),
        note=rest[:2000] or None,
        **technique,
        **kwargs,
    )


def course_episode(b: Bundle, kb: Knowledge) -> Episode | None:
    """The course engine's episode from the stored records (None before any assessment).

    Each session's baseline is the latest ``nrs`` placed *before* it; without one, the last
    follow-up score of an earlier session (or the assessment's pain score) stands in. A
    score placed *after* a session is that session's follow-up, never the next one's
    baseline, even on the same day.
    """
    latest = b.latest_assessment
    if latest is None:
        return None
    assessment = b.assessment(latest).input
    readings = readings_by_session(b)
    sessions: list[Session] = []
    reassessments: list[date] = []
    last_nrs: int | None = assessment.pain.nrs
    for rec in b.sessions:
        r = readings[rec.id]
        pre = r.latest("nrs", "before")
        pre_nrs = round(pre.value) if pre else last_nrs
        if pre_nrs is None:
            continue
        sessions.append(course_session(b.session_data(rec), r, pre_nrs))
        post = r.latest("nrs", "after")
        if post is not None:
            reassessments.append(post.measured_on)
            last_nrs = round(post.value)
    return Episode(
        assessment=assessment,
        plan=_plan_summary(b),
        sessions=sessions,
        reassessments=sorted(set(reassessments)),
        startback=startback_answers(b),
        medial_branch_blocks=medial_branch_blocks(b),
    )


#: Document kind of a diagnostic medial branch block result (JSON: date, level, relief_pct).
MBB_KIND = "medial_branch_block"


def medial_branch_blocks(b: Bundle) -> list[MedialBranchBlock]:
    """The episode's medial branch block results, oldest first (kept as JSON documents)."""
    out: list[MedialBranchBlock] = []
    for rec in sorted(b.documents, key=lambda r: r.created_at):
        data = rec.current.data
        if data.get("kind") != MBB_KIND or data.get("source_id") != str(b.episode.id):
            continue
        doc = DocumentData.model_validate(data)
        out.append(MedialBranchBlock.model_validate_json(doc.content()))
    return out


def startback_answers(b: Bundle) -> list[int | None] | None:
    """The latest STarT Back answers recorded as an outcome (items 1-9), or None."""
    latest: OutcomeData | None = None
    for rec in b.outcomes:
        od = b.outcome_data(rec)
        newer = latest is None or od.measured_on >= latest.measured_on
        if od.instrument == "startback" and od.items and newer:
            latest = od
    if latest is None or latest.items is None:
        return None
    got = latest.items
    return [None if got.get(f"item{i}") is None else int(got[f"item{i}"]) for i in range(1, 10)]


def _session_injectate(s: SessionData) -> str | None:
    seen: dict[str, str] = {}
    for site in s.sites:
        if site.agent == "saline":
            continue
        pct = f" {site.concentration_percent:g}%" if site.concentration_percent else ""
        seen.setdefault(site.agent, f"{site.agent}{pct}")
    return ", ".join(seen.values())[:200] or None


def injectate_label(req: dict[str, Any]) -> str | None:
    inj = req.get("injectate") or {}
    parts = [
        f"{s['agent']} {s['percent']}%" + (" with epinephrine" if s.get("epinephrine") else "")
        for s in inj.get("solutions", [])
    ]
    if inj.get("saline_parts") and float(inj["saline_parts"]) > 0:
        parts.append(f"saline {inj['saline_parts']} part(s)")
    return ", ".join(parts)[:200] or None


# --------------------------------------------------------------------------- trend
@dataclass(frozen=True)
class Point:
    day: date
    value: float
    kind: str = ""  # "pre" (before an injection) or "follow-up"


@dataclass
class Trend:
    series: dict[str, list[Point]]
    sessions: list[date]


def trend(b: Bundle) -> Trend:
    """Outcome values over time per instrument, and the session dates.

    Each point says whether it was the pain before an injection (``pre``) or a follow-up,
    from the same placement the course uses.
    """
    series: dict[str, list[Point]] = {}
    placed = placements(b)
    session_days = {r.id: b.session_data(r).performed_at.date() for r in b.sessions}
    for rec in b.outcomes:
        o = b.outcome_data(rec)
        if o.instrument not in ("nrs", "peg", "odi", "ndi"):
            continue
        where = placed.get(rec.id)
        kind = "" if where is None else ("pre" if where.relation == "before" else "follow-up")
        series.setdefault(o.instrument, []).append(Point(o.measured_on, o.value, kind))
    return Trend(series=series, sessions=sorted(set(session_days.values())))
