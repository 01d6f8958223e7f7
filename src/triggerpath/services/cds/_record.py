"""What the cards need from the record and the engine: the assessment, course and 24 h doses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from triggerpath.domain.engine import assess
from triggerpath.domain.policy import Policy
from triggerpath.domain.recommendation import Reason, Recommendation
from triggerpath.domain.validation import parse_assessment
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.cds._model import ids
from triggerpath.services.cds._ports import EvidenceItem, PastTpi, Record

DAY = timedelta(hours=24)


def run_engine(
    snap: Record, kb: Knowledge, policy: Policy
) -> tuple[Recommendation | None, bool, list[str]]:
    """Run the engine on the record's partial assessment: (result, all regions?, problems)."""
    all_regions = not snap.regions
    try:
        assessment = parse_assessment(snap.assessment_input(screen_all_regions=True), kb)
    except InvalidInput as exc:
        return None, all_regions, [str(p) for p in exc.problems]
    return assess(assessment, kb, as_of=snap.as_of, policy=policy), all_regions, []


def contraindications(rec: Recommendation) -> list[Reason]:
    """The contraindication reasons and findings, once each."""
    seen: dict[str, Reason] = {}
    for r in [*rec.reasons, *rec.findings]:
        if r.code.startswith("contraindication.") and r.code not in seen:
            seen[r.code] = r
    return list(seen.values())


def evidence_for(snap: Record, fields: Iterable[str]) -> list[EvidenceItem]:
    """The EHR records behind the given assessment fields."""
    out: list[EvidenceItem] = []
    for f in fields:
        out.extend(snap.evidence(f))
    return out


def needs_lines(rec: Recommendation, limit: int = 8) -> list[str]:
    """The blocking fields the record does not give (never guessed)."""
    blocking = [n for n in rec.needs if n.blocking]
    if not blocking:
        return []
    shown = ", ".join(f"`{n.field}`" for n in blocking[:limit])
    more = f" and {len(blocking) - limit} more" if len(blocking) > limit else ""
    return [f"**Not in the record (never guessed):** {shown}{more}."]


def tpis_in_last_day(snap: Record) -> list[PastTpi]:
    """TPIs done in the 24 hours before now."""
    return [
        t
        for t in snap.tpis or []
        if t.when is not None and timedelta(0) <= snap.now - t.when <= DAY
    ]


def recent_anesthetic(snap: Record) -> list[str]:
    """Local anesthetic given (or TPIs done) in the last 24 h, one line each."""
    lines = []
    for a in snap.administrations_24h:
        dose = f"{a.dose_value} {a.dose_unit}" if a.dose_value is not None else "dose not recorded"
        when = a.when.isoformat(timespec="minutes") if a.when else "time not recorded"
        lines.append(f"{a.name}, {dose}, {when} ({a.reference})")
    for t in tpis_in_last_day(snap):
        assert t.when is not None
        lines.append(f"TPI {t.code} at {t.when.isoformat(timespec='minutes')} ({t.reference})")
    return lines


@dataclass(frozen=True)
class CourseStatus:
    """The TPI course in the record window: sessions, expected range, reassessment window."""

    count: int
    last: datetime | None
    sessions_min: int
    sessions_max: int
    phase: str | None
    reassess_from: datetime | None
    reassess_by: datetime | None
    statement_ids: tuple[str, ...]
    window_days: int = 365

    @property
    def limit_reached(self) -> bool:
        return self.count >= self.sessions_max

    def lines(self, now: datetime) -> list[str]:
        """The course and reassessment lines of a card (none without a past TPI)."""
        if self.count == 0 or self.last is None:
            return []
        phase = self.phase or "phase unknown"
        out = [
            f"**Course:** {self.count} TPI session(s) in the last {self.window_days} days, "
            f"the last on {self.last.date().isoformat()}; expected "
            f"{self.sessions_min}-{self.sessions_max} sessions ({phase}){ids(['S000.20'])}."
        ]
        if self.reassess_from and self.reassess_by:
            out.append(
                f"**Reassessment** 2-4 weeks after treatment: "
                f"{self.reassess_from.date().isoformat()} to {self.reassess_by.date().isoformat()}"
                f", {self._state(now)}{ids(['S003.12'])}."
            )
        return out

    def _state(self, now: datetime) -> str:
        assert self.reassess_from is not None and self.reassess_by is not None
        if now < self.reassess_from:
            return "not yet due"
        return "due now" if now <= self.reassess_by else "overdue"


def _session_range(kb: Knowledge, phase: str | None) -> tuple[int, int]:
    """Expected sessions for the phase; unknown phase: the smallest maximum (conservative)."""
    phases = {str(p.id): p for p in kb.pathway.duration_phases}
    if phase is not None:
        return phases[phase].sessions_min, phases[phase].sessions_max
    return (
        min(p.sessions_min for p in phases.values()),
        min(p.sessions_max for p in phases.values()),
    )


def course_status(
    snap: Record, rec: Recommendation | None, kb: Knowledge, policy: Policy
) -> CourseStatus:
    """The course from the record's TPI procedures within the policy's window."""
    window = timedelta(days=policy.ehr_course_window_days)
    tpis = [t for t in snap.tpis or [] if t.when is not None and snap.now - t.when <= window]
    last = max((t.when for t in tpis if t.when is not None), default=None)
    phase = rec.expected_course.phase if rec is not None else None
    smin, smax = _session_range(kb, phase)
    reassess = kb.statements.get("S003.12")
    weeks_min = int(reassess.values.get("reassess_weeks_min", 2)) if reassess else 2
    weeks_max = int(reassess.values.get("reassess_weeks_max", 4)) if reassess else 4
    return CourseStatus(
        count=len(tpis),
        last=last,
        sessions_min=smin,
        sessions_max=smax,
        phase=phase,
        reassess_from=last + timedelta(weeks=weeks_min) if last else None,
        reassess_by=last + timedelta(weeks=weeks_max) if last else None,
        statement_ids=("S000.20", "S003.12"),
        window_days=policy.ehr_course_window_days,
    )


def statement_ids_of(reasons: Sequence[Reason]) -> list[str]:
    """The statement ids of reasons, in order."""
    return [s for r in reasons for s in r.statement_ids]
