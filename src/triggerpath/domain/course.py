"""The treatment course: sessions, response, course rules and the way out when TPIs fail.

An :class:`Episode` is one patient's course of TPIs: the assessment that started it, an
optional plan summary, the sessions with their outcome scores, the reassessments done and
any medial branch block results. :func:`evaluate_course` turns it into one
:class:`CourseReport`, purely (time comes in as ``as_of``):

- each session's response from its pre-injection and follow-up NRS, by the IMMPACT
  thresholds (>= 30% moderately important, >= 50% substantial, about 2 points) and the
  relief duration (policy ``min_relief_days``): responder, partial, non_responder or
  relief_too_short; the course takes the class of its latest scored session;
- the session count against the phase's range (1-4 acute/subacute, 2-8 chronic; S000.20)
  with warnings one session before the limit, at it and beyond it;
- the reassessment 2-4 weeks after the first session (S003.12): upcoming, due, overdue or done;
- TPIs never alone (S000.25): a warning for sessions without physical therapy or home
  exercise, and when conservative care lapses (S000.26);
- repeated TPIs as long-term management (S000.01, S000.02);
- complications, outcome instrument trends (PEG, ODI, NDI) and the STarT Back risk group;
- the re-evaluation worksheet when TPIs fail (S000.31-33, S004.01-09) and the radiofrequency
  ablation decision from medial branch block results (S000.32).

Each bullet is one named step of :func:`evaluate_course`; the episode types and their checks
live in :mod:`triggerpath.domain.episode` (re-exported here), the worksheet in
:mod:`triggerpath.domain.reevaluation`::

    Episode ─> assess(assessment) ─> _check_assessment_verdict
           ─> session_results ─> course_response            (IMMPACT, relief days)
           ─> session_count ─> reassessment_status          (S000.20, S003.12)
           ─> _check_active_care ─> _check_long_term_use ─> _check_complications
           ─> outcome_trends ─> _check_instrument_regions ─> _startback
           ─> _reevaluation (build_worksheet) ─> _ablation ─> CourseReport

Steps add their warnings, notes and needs to one ``_Findings`` in this order, which is the
order the report lists them in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.domain.engine import DISCLAIMER, assess
from triggerpath.domain.episode import (
    SCORED_INSTRUMENTS,
    Episode,
    Guidance,
    MedialBranchBlock,
    PlanSummary,
    PlanTarget,
    Session,
    Technique,
    check_episode,
    parse_episode,
)
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import (
    Caution,
    ExpectedCourse,
    Need,
    Reason,
    Recommendation,
    Verdict,
)
from triggerpath.domain.reevaluation import (
    AblationDecision,
    Worksheet,
    ablation_decision,
    build_worksheet,
)
from triggerpath.domain.scoring import Score, score
from triggerpath.knowledge.instruments import CourseRule, ResponseClass, ResponseClassRule
from triggerpath.knowledge.loader import Knowledge

Phase = Literal["acute", "subacute", "chronic"]


# --------------------------------------------------------------------------- results
class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionResult(_Out):
    number: int
    date: dt.date
    pre_nrs: int
    post_nrs: int | None
    change_points: int | None
    change_pct: float | None
    meets_points: bool | None = Field(description="reduction of at least ~2 NRS points")
    relief_duration_days: float | None
    response: ResponseClass | None
    response_text: str
    physical_therapy: bool | None
    home_exercise: bool | None
    complications: list[str]
    scores: list[Score]
    statement_ids: list[str]


class CourseResponse(_Out):
    classification: ResponseClass | None
    name: str
    text: str
    based_on_session: int | None
    baseline_nrs: int | None
    latest_nrs: int | None
    change_pct: float | None
    change_points: int | None
    moderate_pct: float
    substantial_pct: float
    points: float
    statement_ids: list[str]
    references: list[str]


class SessionCount(_Out):
    phase: Phase | None
    done: int
    sessions_min: int | None
    sessions_max: int | None
    planned: int | None
    remaining: int | None = Field(description="sessions left before the phase's maximum")
    statement_ids: list[str]


class ReassessmentStatus(_Out):
    status: Literal["not_started", "upcoming", "due", "overdue", "done"]
    therapy_start: dt.date | None
    due_from: dt.date | None
    due_by: dt.date | None
    done_on: dt.date | None
    statement_ids: list[str]


class OutcomeTrend(_Out):
    instrument: str
    name: str
    unit: str
    first_session: int
    first: float
    first_band: str | None
    latest_session: int
    latest: float
    latest_band: str | None
    change: float = Field(description="latest minus first (negative = better)")


class AssessmentSummary(_Out):
    verdict: Verdict
    headline: str
    reasons: list[Reason]


class CourseReport(_Out):
    headline: str
    response: CourseResponse
    course: SessionCount
    reassessment: ReassessmentStatus
    warnings: list[Caution]
    notes: list[Reason]
    needs: list[Need]
    sessions: list[SessionResult]
    outcomes: list[OutcomeTrend]
    startback: Score | None
    reevaluation: Worksheet | None
    ablation: AblationDecision | None
    assessment: AssessmentSummary
    policy: dict[str, Any]
    knowledge_version: str
    as_of: dt.date
    disclaimer: str

    @property
    def statement_ids(self) -> list[str]:
        ids: set[str] = set(self.response.statement_ids)
        for c in self.warnings:
            ids.update(c.statement_ids)
        for r in self.notes:
            ids.update(r.statement_ids)
        return sorted(ids)


# --------------------------------------------------------------------------- response
def session_response(
    pre: int,
    post: int | None,
    relief_days: float | None,
    knowledge: Knowledge,
    policy: Policy = DEFAULT_POLICY,
) -> tuple[ResponseClass | None, float | None, str]:
    """(class, % change, explanation) for one session by the IMMPACT thresholds."""
    t = knowledge.instruments.response.thresholds
    if post is None:
        return None, None, "No follow-up pain score yet."
    if pre == 0:
        return None, None, "No pain before the injection (NRS 0): a change cannot be judged."
    pct = (pre - post) * 100 / pre
    drop = pre - post
    if drop >= 0:
        desc = f"NRS {pre} → {post} ({pct:.0f}% reduction, {drop} point{'s' if drop != 1 else ''})"
    else:
        desc = f"NRS {pre} → {post} (pain worse by {-drop} point{'s' if drop != -1 else ''})"
    if pct < t.moderate_pct:
        near = (
            f" (the drop reaches about {t.points:g} points, but the percentage decides)"
            if drop >= t.points
            else ""
        )
        return "non_responder", pct, f"{desc}: below the {t.moderate_pct:g}% threshold{near}."
    level = "substantial" if pct >= t.substantial_pct else "moderately important"
    cls: ResponseClass = "responder" if pct >= t.substantial_pct else "partial"
    if relief_days is not None and relief_days < policy.min_relief_days:
        return (
            "relief_too_short",
            pct,
            f"{desc}: {level}, but the relief lasted {relief_days:g} days, under the "
            f"{policy.min_relief_days} days required.",
        )
    lasted = (
        f", lasting {relief_days:g} days" if relief_days is not None else ", duration not recorded"
    )
    return cls, pct, f"{desc}: {level}{lasted}."


def _caution(
    rule: CourseRule, specific: str, fields: list[str], extra: Sequence[str] = ()
) -> Caution:
    return Caution(
        code=rule.id,
        text=f"{specific} {rule.text}".strip(),
        action=rule.action,
        fields=fields,
        statement_ids=list(dict.fromkeys([*rule.statement_ids, *extra])),
    )


def _note(rule: CourseRule, specific: str, fields: list[str], extra: Sequence[str] = ()) -> Reason:
    return Reason(
        code=rule.id,
        text=f"{specific} {rule.text} {rule.action}".strip(),
        fields=fields,
        statement_ids=list(dict.fromkeys([*rule.statement_ids, *extra])) or ["S003.12"],
    )


def _has_active_care(s: Session) -> bool:
    return s.physical_therapy is True or s.home_exercise is True


@dataclass(frozen=True)
class _Course:
    """What every step reads: the episode, knowledge, policy, date and assessment verdict."""

    episode: Episode
    kb: Knowledge
    policy: Policy
    as_of: dt.date
    rec: Recommendation

    @property
    def sessions(self) -> list[Session]:
        return self.episode.sessions

    @property
    def rules(self) -> dict[str, CourseRule]:
        return {r.id: r for r in self.kb.instruments.course_rules}

    @property
    def classes(self) -> dict[str, ResponseClassRule]:
        return {c.id: c for c in self.kb.instruments.response.classes}

    @property
    def expected(self) -> ExpectedCourse:
        return self.rec.expected_course


@dataclass
class _Findings:
    """Warnings, notes and needs, in the order the steps add them (the report keeps it)."""

    warnings: list[Caution] = field(default_factory=list)
    notes: list[Reason] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)


def evaluate_course(
    episode: Episode,
    knowledge: Knowledge,
    *,
    as_of: dt.date,
    policy: Policy = DEFAULT_POLICY,
) -> CourseReport:
    """Evaluate a course of TPIs as of a date. Pure and deterministic.

    The steps follow the pathway: assessment verdict → session responses → course response
    → course limits → reassessment → active care and long-term use → complications →
    outcomes → re-evaluation when TPIs fail → report.
    """
    c = _Course(
        episode,
        knowledge,
        policy,
        as_of,
        assess(episode.assessment, knowledge, as_of=as_of, policy=policy),
    )
    f = _Findings()
    _check_assessment_verdict(c, f)
    results = session_results(c, f)
    response = course_response(c, results)
    count = session_count(c, f)
    reassessment = reassessment_status(c, f)
    _check_active_care(c, f)
    _check_long_term_use(c, f)
    _check_complications(c, f)
    outcomes = outcome_trends(results)
    _check_instrument_regions(c, outcomes, f)
    startback = _startback(c, f)
    worksheet = _reevaluation(c, response, startback, f)
    return CourseReport(
        headline=_headline(c, response, worksheet, len(f.warnings)),
        response=response,
        course=count,
        reassessment=reassessment,
        warnings=f.warnings,
        notes=f.notes,
        needs=list({n.field: n for n in f.needs}.values()),
        sessions=results,
        outcomes=outcomes,
        startback=startback,
        reevaluation=worksheet,
        ablation=_ablation(c),
        assessment=AssessmentSummary(
            verdict=c.rec.verdict, headline=c.rec.headline, reasons=list(c.rec.reasons)
        ),
        policy=c.policy.model_dump(
            mode="python", include={"min_relief_days", "long_term_course_weeks", "rfa_rule"}
        ),
        knowledge_version=knowledge.version,
        as_of=as_of,
        disclaimer=DISCLAIMER,
    )


def _check_assessment_verdict(c: _Course, f: _Findings) -> None:
    """A course on an assessment that does not support TPIs is flagged first."""
    rec = c.rec
    if rec.verdict != "tpi_appropriate":
        ids = [s for r in rec.reasons for s in r.statement_ids]
        f.warnings.append(
            _caution(
                c.rules["assessment_not_tpi"],
                f"Assessment verdict: {rec.verdict} ({rec.headline})",
                ["assessment"],
                ids,
            )
        )


def session_results(c: _Course, f: _Findings) -> list[SessionResult]:
    """Each session's response and scores; a need for every follow-up still missing."""
    return [_session_result(c, i, s, f) for i, s in enumerate(c.sessions)]


def _session_result(c: _Course, i: int, s: Session, f: _Findings) -> SessionResult:
    """One session: NRS change, IMMPACT class and the questionnaires answered."""
    kb = c.kb
    thresholds = kb.instruments.response.thresholds
    cls, pct, text = session_response(s.pre_nrs, s.post_nrs, s.relief_duration_days, kb, c.policy)
    if s.post_nrs is None:
        f.needs.append(
            Need(field=f"sessions[{i}].post_nrs", why="follow-up pain score", blocking=False)
        )
    elif cls in ("responder", "partial") and s.relief_duration_days is None:
        f.needs.append(
            Need(
                field=f"sessions[{i}].relief_duration_days",
                why="whether the relief lasted long enough",
                blocking=False,
            )
        )
    scores = [
        score(inst, answers, kb, field=f"sessions[{i}].{inst}")
        for inst in SCORED_INSTRUMENTS
        if (answers := getattr(s, inst)) is not None
    ]
    points = s.pre_nrs - s.post_nrs if s.post_nrs is not None else None
    return SessionResult(
        number=i + 1,
        date=s.date,
        pre_nrs=s.pre_nrs,
        post_nrs=s.post_nrs,
        change_points=points,
        change_pct=round(pct, 1) if pct is not None else None,
        meets_points=points >= thresholds.points if points is not None else None,
        relief_duration_days=s.relief_duration_days,
        response=cls,
        response_text=text,
        physical_therapy=s.physical_therapy,
        home_exercise=s.home_exercise,
        complications=list(s.complications),
        scores=scores,
        statement_ids=list(c.classes[cls].statement_ids) if cls else ["S003.12"],
    )


def course_response(c: _Course, results: Sequence[SessionResult]) -> CourseResponse:
    """The course takes the class of its latest scored session, against the first NRS."""
    thresholds = c.kb.instruments.response.thresholds
    scored = [r for r in results if r.response is not None]
    common: dict[str, Any] = {
        "moderate_pct": thresholds.moderate_pct,
        "substantial_pct": thresholds.substantial_pct,
        "points": thresholds.points,
        "references": list(thresholds.references),
    }
    if not scored:
        return CourseResponse(
            classification=None,
            name="Not yet known",
            text="No session has a follow-up pain score yet."
            if c.sessions
            else "No TPI session recorded yet.",
            based_on_session=None,
            baseline_nrs=results[0].pre_nrs if results else None,
            latest_nrs=None,
            change_pct=None,
            change_points=None,
            statement_ids=["S003.12", "S000.19"],
            **common,
        )
    latest = scored[-1]
    assert latest.response is not None
    rule = c.classes[latest.response]
    baseline, last_post = results[0].pre_nrs, latest.post_nrs
    course_pct = (
        round((baseline - last_post) * 100 / baseline, 1)
        if baseline and last_post is not None
        else None
    )
    return CourseResponse(
        classification=latest.response,
        name=rule.name,
        text=f"Session {latest.number}: {latest.response_text} {rule.meaning}",
        based_on_session=latest.number,
        baseline_nrs=baseline,
        latest_nrs=last_post,
        change_pct=course_pct,
        change_points=baseline - last_post if last_post is not None else None,
        statement_ids=list(rule.statement_ids),
        **common,
    )


def session_count(c: _Course, f: _Findings) -> SessionCount:
    """Sessions done and planned against the phase's range (S000.20)."""
    ec, done = c.expected, len(c.sessions)
    smax = ec.sessions_max
    planned = c.episode.plan.planned_sessions if c.episode.plan else None
    if smax is None:
        f.warnings.append(
            _caution(c.rules["phase_unknown"], "", ["assessment.pain.duration_weeks"])
        )
        f.needs.append(
            Need(
                field="assessment.pain.duration_weeks",
                why="phase and so the number of sessions planned",
                blocking=False,
            )
        )
    else:
        _check_session_limits(c, done, smax, planned, f)
    return SessionCount(
        phase=ec.phase,
        done=done,
        sessions_min=ec.sessions_min,
        sessions_max=smax,
        planned=planned,
        remaining=max(smax - done, 0) if smax is not None else None,
        statement_ids=list(ec.statement_ids),
    )


def _check_session_limits(
    c: _Course, done: int, smax: int, planned: int | None, f: _Findings
) -> None:
    """Warn one session before the maximum, at it, beyond it, and for a plan over it."""
    ec, rules = c.expected, c.rules
    rng = f"{ec.phase}: {ec.sessions_min}-{smax}"
    limit = _session_limit(done, smax)
    if limit is not None:
        text = (
            f"{done} sessions done, over the maximum of {smax} ({rng})."
            if limit == "session_limit_exceeded"
            else f"{done} of {smax} sessions done ({rng})."
        )
        f.warnings.append(_caution(rules[limit], text, ["sessions"]))
    if planned is not None and planned > smax:
        f.warnings.append(
            _caution(
                rules["plan_exceeds_limit"],
                f"{planned} sessions planned; the range is {ec.sessions_min}-{smax} ({ec.phase}).",
                ["plan.planned_sessions"],
            )
        )


def _session_limit(done: int, smax: int) -> str | None:
    """Which course rule the session count meets: beyond, at, or one before the maximum."""
    if done > smax:
        return "session_limit_exceeded"
    if done == smax:
        return "session_limit_reached"
    if done == smax - 1 and done > 0:
        return "session_limit_near"
    return None


def reassessment_status(c: _Course, f: _Findings) -> ReassessmentStatus:
    """The reassessment 2-4 weeks after the first session (S003.12)."""
    ra = c.kb.instruments.reassessment
    if not c.sessions:
        return ReassessmentStatus(
            status="not_started",
            therapy_start=None,
            due_from=None,
            due_by=None,
            done_on=None,
            statement_ids=list(ra.statement_ids),
        )
    start = c.sessions[0].date
    due_from = start + timedelta(days=round(ra.weeks_min * 7))
    due_by = start + timedelta(days=round(ra.weeks_max * 7))
    done_on = next((d for d in sorted(c.episode.reassessments) if d >= due_from), None)
    return ReassessmentStatus(
        status=_reassessment_due(c, due_from, due_by, done_on, f),
        therapy_start=start,
        due_from=due_from,
        due_by=due_by,
        done_on=done_on,
        statement_ids=list(ra.statement_ids),
    )


def _reassessment_due(
    c: _Course, due_from: dt.date, due_by: dt.date, done_on: dt.date | None, f: _Findings
) -> Literal["upcoming", "due", "overdue", "done"]:
    """Done, upcoming (a note), due or overdue (a warning) as of the report date."""
    rules, as_of = c.rules, c.as_of
    window = f"window {due_from} to {due_by}"
    if done_on is not None:
        f.notes.append(_note(rules["reassessment_done"], f"Reassessed on {done_on}.", []))
        return "done"
    if as_of < due_from:
        f.notes.append(
            _note(rules["reassessment_upcoming"], f"Reassessment {window}.", ["sessions[0].date"])
        )
        return "upcoming"
    if as_of <= due_by:
        f.warnings.append(
            _caution(rules["reassessment_due"], f"Reassessment {window}.", ["reassessments"])
        )
        return "due"
    f.warnings.append(
        _caution(
            rules["reassessment_overdue"],
            f"Reassessment was due by {due_by} ({(as_of - due_by).days} days ago).",
            ["reassessments"],
        )
    )
    return "overdue"


def _check_active_care(c: _Course, f: _Findings) -> None:
    """TPIs never alone (S000.25); conservative care kept going (S000.26)."""
    sessions, rules = c.sessions, c.rules
    if not sessions:
        return
    lacking = [i for i, s in enumerate(sessions) if not _has_active_care(s)]
    last = len(sessions) - 1
    lapsed = last in lacking and any(_has_active_care(s) for s in sessions[:last])
    if lapsed:
        f.warnings.append(
            _caution(
                rules["conservative_care_lapsed"],
                f"Session {last + 1} ({sessions[last].date}) records neither physical "
                "therapy nor home exercise.",
                [f"sessions[{last}].physical_therapy", f"sessions[{last}].home_exercise"],
            )
        )
    mono = [i for i in lacking if not (lapsed and i == last)]
    if mono:
        unknown = [i for i in mono if sessions[i].physical_therapy is None]
        specific = (
            f"Session(s) {', '.join(str(i + 1) for i in mono)} without physical therapy "
            "or home exercise"
            + (" recorded" if unknown else "")
            + ("; none recorded in the whole course." if len(mono) == len(sessions) else ".")
        )
        fields = [
            name
            for i in mono
            for name in (f"sessions[{i}].physical_therapy", f"sessions[{i}].home_exercise")
        ]
        f.warnings.append(_caution(rules["monotherapy"], specific, fields))
    f.notes.append(_note(rules["continue_conservative_care"], "", []))


def _check_long_term_use(c: _Course, f: _Findings) -> None:
    """Repeated TPIs as long-term management (S000.01, S000.02)."""
    sessions, policy = c.sessions, c.policy
    done, smax = len(sessions), c.expected.sessions_max
    if done < 2:
        return
    span_weeks = (sessions[-1].date - sessions[0].date).days / 7
    why: list[str] = []
    if span_weeks > policy.long_term_course_weeks:
        why.append(
            f"the course spans {span_weeks:.0f} weeks (policy: more than "
            f"{policy.long_term_course_weeks:g})"
        )
    if smax is not None and done > smax:
        why.append(f"{done} sessions exceed the {smax} planned for the phase")
    if why:
        f.warnings.append(
            _caution(
                c.rules["long_term_repeated_tpis"],
                f"Repeated TPIs: {'; '.join(why)}.",
                ["sessions"],
            )
        )


def _check_complications(c: _Course, f: _Findings) -> None:
    """A serious complication is a warning with its action; an expected one is a note."""
    comp = {x.id: x for x in c.kb.instruments.complications}
    rules = c.rules
    for i, s in enumerate(c.sessions):
        for j, cid in enumerate(s.complications):
            x = comp[cid]
            where = [f"sessions[{i}].complications[{j}]"]
            if x.serious:
                rule = rules["complication_serious"]
                f.warnings.append(
                    Caution(
                        code=f"complication.{x.id}",
                        text=f"{x.name} after session {i + 1} ({s.date}). {rule.text}",
                        action=x.action,
                        fields=where,
                        statement_ids=list(x.statement_ids) or list(rule.statement_ids),
                    )
                )
            else:
                f.notes.append(
                    _note(
                        rules["complication_expected"],
                        f"{x.name} after session {i + 1}: {x.action}",
                        where,
                        x.statement_ids,
                    )
                )


def outcome_trends(results: Sequence[SessionResult]) -> list[OutcomeTrend]:
    """First and latest score of each outcome instrument (PEG, ODI, NDI) recorded."""
    outcomes: list[OutcomeTrend] = []
    for inst in SCORED_INSTRUMENTS:
        series = [(r.number, sc) for r in results for sc in r.scores if sc.instrument == inst]
        if not series:
            continue
        (n0, first), (n1, latest) = series[0], series[-1]
        outcomes.append(
            OutcomeTrend(
                instrument=inst,
                name=first.name,
                unit=first.unit,
                first_session=n0,
                first=first.score,
                first_band=first.band,
                latest_session=n1,
                latest=latest.score,
                latest_band=latest.band,
                change=round(latest.score - first.score, 2),
            )
        )
    return outcomes


def _check_instrument_regions(c: _Course, outcomes: Sequence[OutcomeTrend], f: _Findings) -> None:
    """ODI is for low back pain, NDI for neck pain: a note when one is used elsewhere."""
    regions = set(c.episode.assessment.regions)
    upper = {"neck", "upper_back"}
    used = {o.instrument for o in outcomes}
    rule = c.rules["instrument_region"]
    if "odi" in used and regions <= upper:
        f.notes.append(_note(rule, "ODI recorded for neck/upper back pain.", []))
    if "ndi" in used and not regions & upper:
        f.notes.append(_note(rule, "NDI recorded for pain outside the neck.", []))


def _startback(c: _Course, f: _Findings) -> Score | None:
    """The STarT Back risk group and its matched care, as a note."""
    answers = c.episode.startback
    if answers is None:
        return None
    sb = score("startback", answers, c.kb, field="startback")
    f.notes.append(
        Reason(
            code="startback",
            text=f"STarT Back: {sb.band_name} (total {sb.raw}/9, psychosocial "
            f"{sb.subscales.get('psychosocial')}/5). Matched care: "
            f"{sb.matched_care}",
            fields=["startback"],
            statement_ids=["S002.34", "S003.10", "S004.04"],
        )
    )
    return sb


def _reevaluation(
    c: _Course, response: CourseResponse, startback: Score | None, f: _Findings
) -> Worksheet | None:
    """When TPIs fail, the re-evaluation worksheet (S000.31, S004.05, S003.12)."""
    opened = _why_reevaluate(c, response)
    if not opened:
        return None
    f.warnings.append(_caution(c.rules["reevaluate"], "", ["sessions"]))
    return build_worksheet(
        c.episode.assessment,
        c.sessions,
        c.kb,
        opened_because=opened,
        plan=c.episode.plan,
        startback=startback,
    )


def _why_reevaluate(c: _Course, response: CourseResponse) -> list[Reason]:
    """No response, too short a relief, or only a partial one at the session limit."""
    cls_now = response.classification
    done, smax = len(c.sessions), c.expected.sessions_max
    if cls_now in ("non_responder", "relief_too_short"):
        rule = c.classes[cls_now]
        return [
            Reason(
                code=f"course.{cls_now}",
                text=f"Course response {rule.name.lower()}. {response.text}",
                fields=[f"sessions[{(response.based_on_session or 1) - 1}].post_nrs"],
                statement_ids=list(rule.statement_ids),
            )
        ]
    if cls_now == "partial" and smax is not None and done >= smax:
        return [
            Reason(
                code="course.partial_at_limit",
                text=f"Only a partial response after {done} of {smax} sessions: symptoms "
                "persist despite the planned course.",
                fields=["sessions"],
                statement_ids=["S003.12", "S000.20", "S000.31"],
            )
        ]
    return []


def _ablation(c: _Course) -> AblationDecision | None:
    """The radiofrequency ablation decision, when medial branch blocks are recorded."""
    blocks = c.episode.medial_branch_blocks
    return ablation_decision(blocks, c.policy, knowledge=c.kb) if blocks else None


def _headline(
    c: _Course, response: CourseResponse, worksheet: Worksheet | None, n_warn: int
) -> str:
    """One line: the response (or the call to re-evaluate), sessions against range, warnings."""
    ec, done = c.expected, len(c.sessions)
    if worksheet is not None:
        headline = "TPIs are not working: re-evaluate before any further injection."
    elif response.classification is None:
        headline = response.text
    else:
        headline = f"{response.name} after {done} session{'s' if done != 1 else ''}."
    if ec.sessions_max is not None:
        headline += f" Sessions {done} of {ec.sessions_min}-{ec.sessions_max} ({ec.phase})."
    if n_warn:
        headline += f" {n_warn} warning{'s' if n_warn != 1 else ''}."
    return headline


__all__ = [
    "SCORED_INSTRUMENTS",
    "AssessmentSummary",
    "CourseReport",
    "CourseResponse",
    "Episode",
    "Guidance",
    "MedialBranchBlock",
    "OutcomeTrend",
    "PlanSummary",
    "PlanTarget",
    "ReassessmentStatus",
    "Session",
    "SessionCount",
    "SessionResult",
    "Technique",
    "check_episode",
    "evaluate_course",
    "parse_episode",
    "session_response",
]
