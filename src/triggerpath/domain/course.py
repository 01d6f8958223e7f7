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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.engine import DISCLAIMER, assess
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import Caution, Need, Reason, Verdict
from triggerpath.domain.reevaluation import (
    AblationDecision,
    MedialBranchBlock,
    Worksheet,
    ablation_decision,
    build_worksheet,
)
from triggerpath.domain.scoring import Answer, Score, score
from triggerpath.domain.validation import check_ids, problems_from
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.instruments import CourseRule, ResponseClass
from triggerpath.knowledge.loader import Knowledge

Guidance = Literal["palpation", "ultrasound", "fluoroscopy"]
Phase = Literal["acute", "subacute", "chronic"]
SCORED_INSTRUMENTS: tuple[Literal["peg", "odi", "ndi"], ...] = ("peg", "odi", "ndi")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanTarget(_In):
    """A target as the procedure planner writes it (``triggerpath plan``: targets[])."""

    muscle: str = Field(description="muscle id (triggerpath knowledge muscles)")
    side: Literal["left", "right", "bilateral"] | None = None
    sites: int | None = Field(default=None, ge=1, le=20)
    volume_ml_per_site: float | None = Field(default=None, gt=0, le=10)


class _Technique(_In):
    muscles: list[str] = Field(default_factory=list, description="muscle ids injected")
    targets: list[PlanTarget] = Field(
        default_factory=list, description="the planner's targets, instead of or with muscles"
    )
    injectate: str | None = Field(default=None, max_length=200)
    volume_ml_per_point: float | None = Field(default=None, gt=0, le=10)
    guidance: Guidance | None = None

    def injected_muscles(self) -> list[str]:
        return list(dict.fromkeys([*self.muscles, *(t.muscle for t in self.targets)]))

    def volumes(self) -> list[float]:
        """mL per point: the recorded value, else the targets' volumes per site."""
        if self.volume_ml_per_point is not None:
            return [self.volume_ml_per_point]
        return [t.volume_ml_per_site for t in self.targets if t.volume_ml_per_site is not None]


class PlanSummary(_Technique):
    """What was planned (from the procedure planner or typed in); every field optional."""

    planned_sessions: int | None = Field(default=None, ge=1, le=20)


class Session(_Technique):
    """One TPI session and its outcome (technique fields as in the plan)."""

    date: dt.date
    pre_nrs: int = Field(ge=0, le=10, description="pain (NRS 0-10) before the injection")
    post_nrs: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description="pain (NRS 0-10) at the session's follow-up, not the reading straight after "
        "the injection; null = not yet known",
    )
    relief_duration_days: float | None = Field(
        default=None, ge=0, le=365, description="how many days the relief lasted"
    )
    physical_therapy: bool | None = Field(
        default=None, description="physical therapy going on alongside this session"
    )
    home_exercise: bool | None = Field(
        default=None, description="home exercise programme being done alongside"
    )
    complications: list[str] = Field(default_factory=list, description="complication ids")
    corticosteroid: bool | None = None
    twitch_elicited: bool | None = Field(
        default=None, description="local twitch response as the needle entered"
    )
    peg: list[Answer] | None = Field(default=None, description="PEG answers, 3 items")
    odi: list[Answer] | None = Field(default=None, description="ODI 2.1a answers, 10 sections")
    ndi: list[Answer] | None = Field(default=None, description="NDI answers, 10 items")
    note: str | None = Field(default=None, max_length=2000)


class Episode(_In):
    """A patient's course of TPIs: the episode file ``triggerpath course`` reads."""

    assessment: Assessment
    plan: PlanSummary | None = None
    sessions: list[Session] = Field(default_factory=list, max_length=60)
    reassessments: list[dt.date] = Field(
        default_factory=list, description="dates the response was formally reviewed"
    )
    startback: list[Answer] | None = Field(
        default=None, description="STarT Back answers: items 1-8 0/1, item 9 0-4"
    )
    medial_branch_blocks: list[MedialBranchBlock] = Field(default_factory=list)


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


# --------------------------------------------------------------------------- parsing
def parse_episode(data: Any, knowledge: Knowledge, *, as_of: dt.date) -> Episode:
    """Validate raw JSON-like data into an :class:`Episode`, or raise ``InvalidInput``.

    Besides the schema: knowledge-base ids (muscles, modalities, complications), dates in
    order and not after ``as_of``, and every questionnaire answer in range.
    """
    if not isinstance(data, dict):
        raise InvalidInput.single("(root)", "expected a JSON object with the episode")
    try:
        episode = Episode.model_validate(data)
    except ValidationError as err:
        raise InvalidInput(problems_from(err)) from None
    problems = check_episode(episode, knowledge, as_of=as_of)
    if problems:
        raise InvalidInput(problems)
    return episode


def _unknown_muscles(t: _Technique, where: str, kb: Knowledge) -> list[FieldProblem]:
    found = [
        FieldProblem(f"{where}.muscles[{j}]", f"unknown muscle {m!r}")
        for j, m in enumerate(t.muscles)
        if m not in kb.muscles
    ]
    found += [
        FieldProblem(f"{where}.targets[{j}].muscle", f"unknown muscle {x.muscle!r}")
        for j, x in enumerate(t.targets)
        if x.muscle not in kb.muscles
    ]
    return found


def check_episode(episode: Episode, knowledge: Knowledge, *, as_of: dt.date) -> list[FieldProblem]:
    kb = knowledge
    problems = check_ids(episode.assessment, kb, prefix="assessment")
    complications = {c.id for c in kb.instruments.complications}
    if episode.plan:
        problems.extend(_unknown_muscles(episode.plan, "plan", kb))
    previous: dt.date | None = None
    for i, s in enumerate(episode.sessions):
        where = f"sessions[{i}]"
        if s.date > as_of:
            problems.append(FieldProblem(f"{where}.date", f"{s.date} is after {as_of} (as of)"))
        if previous is not None and s.date <= previous:
            problems.append(
                FieldProblem(
                    f"{where}.date", f"{s.date} must be after the previous session ({previous})"
                )
            )
        previous = s.date
        problems.extend(_unknown_muscles(s, where, kb))
        for j, c in enumerate(s.complications):
            if c not in complications:
                problems.append(
                    FieldProblem(
                        f"{where}.complications[{j}]",
                        f"unknown complication {c!r}; known: {', '.join(sorted(complications))}",
                    )
                )
        if s.post_nrs is None and s.relief_duration_days is not None:
            problems.append(
                FieldProblem(f"{where}.post_nrs", "needed when relief_duration_days is given")
            )
        for inst in SCORED_INSTRUMENTS:
            answers = getattr(s, inst)
            if answers is not None:
                try:
                    score(inst, answers, kb, field=f"{where}.{inst}")
                except InvalidInput as exc:
                    problems.extend(exc.problems)
    for i, d in enumerate(episode.reassessments):
        if d > as_of:
            problems.append(FieldProblem(f"reassessments[{i}]", f"{d} is after {as_of} (as of)"))
    if episode.startback is not None:
        try:
            score("startback", episode.startback, kb, field="startback")
        except InvalidInput as exc:
            problems.extend(exc.problems)
    for i, b in enumerate(episode.medial_branch_blocks):
        if b.date is not None and b.date > as_of:
            problems.append(
                FieldProblem(f"medial_branch_blocks[{i}].date", f"{b.date} is after {as_of}")
            )
    return problems


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


def evaluate_course(
    episode: Episode,
    knowledge: Knowledge,
    *,
    as_of: dt.date,
    policy: Policy = DEFAULT_POLICY,
) -> CourseReport:
    """Evaluate a course of TPIs as of a date. Pure and deterministic."""
    kb = knowledge
    ins = kb.instruments
    rules = {r.id: r for r in ins.course_rules}
    a = episode.assessment
    sessions = episode.sessions
    rec = assess(a, kb, as_of=as_of, policy=policy)
    warnings: list[Caution] = []
    notes: list[Reason] = []
    needs: list[Need] = []

    if rec.verdict != "tpi_appropriate":
        ids = [s for r in rec.reasons for s in r.statement_ids]
        warnings.append(
            _caution(
                rules["assessment_not_tpi"],
                f"Assessment verdict: {rec.verdict} ({rec.headline})",
                ["assessment"],
                ids,
            )
        )

    # ---- sessions and their responses
    thresholds = ins.response.thresholds
    classes = {c.id: c for c in ins.response.classes}
    results: list[SessionResult] = []
    for i, s in enumerate(sessions):
        cls, pct, text = session_response(s.pre_nrs, s.post_nrs, s.relief_duration_days, kb, policy)
        if s.post_nrs is None:
            needs.append(
                Need(field=f"sessions[{i}].post_nrs", why="follow-up pain score", blocking=False)
            )
        elif cls in ("responder", "partial") and s.relief_duration_days is None:
            needs.append(
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
        results.append(
            SessionResult(
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
                statement_ids=list(classes[cls].statement_ids) if cls else ["S003.12"],
            )
        )

    # ---- course response: the latest scored session
    scored = [r for r in results if r.response is not None]
    refs = list(thresholds.references)
    if scored:
        latest = scored[-1]
        cls_rule = classes[latest.response] if latest.response else None
        baseline = results[0].pre_nrs
        last_post = latest.post_nrs
        course_pct = (
            round((baseline - last_post) * 100 / baseline, 1)
            if baseline and last_post is not None
            else None
        )
        assert cls_rule is not None
        response = CourseResponse(
            classification=latest.response,
            name=cls_rule.name,
            text=f"Session {latest.number}: {latest.response_text} {cls_rule.meaning}",
            based_on_session=latest.number,
            baseline_nrs=baseline,
            latest_nrs=last_post,
            change_pct=course_pct,
            change_points=baseline - last_post if last_post is not None else None,
            moderate_pct=thresholds.moderate_pct,
            substantial_pct=thresholds.substantial_pct,
            points=thresholds.points,
            statement_ids=list(cls_rule.statement_ids),
            references=refs,
        )
    else:
        response = CourseResponse(
            classification=None,
            name="Not yet known",
            text="No session has a follow-up pain score yet."
            if sessions
            else "No TPI session recorded yet.",
            based_on_session=None,
            baseline_nrs=results[0].pre_nrs if results else None,
            latest_nrs=None,
            change_pct=None,
            change_points=None,
            moderate_pct=thresholds.moderate_pct,
            substantial_pct=thresholds.substantial_pct,
            points=thresholds.points,
            statement_ids=["S003.12", "S000.19"],
            references=refs,
        )

    # ---- session count against the phase's range (S000.20)
    ec = rec.expected_course
    done = len(sessions)
    smax = ec.sessions_max
    planned = episode.plan.planned_sessions if episode.plan else None
    count = SessionCount(
        phase=ec.phase,
        done=done,
        sessions_min=ec.sessions_min,
        sessions_max=smax,
        planned=planned,
        remaining=max(smax - done, 0) if smax is not None else None,
        statement_ids=list(ec.statement_ids),
    )
    if smax is None:
        warnings.append(_caution(rules["phase_unknown"], "", ["assessment.pain.duration_weeks"]))
        needs.append(
            Need(
                field="assessment.pain.duration_weeks",
                why="phase and so the number of sessions planned",
                blocking=False,
            )
        )
    else:
        rng = f"{ec.phase}: {ec.sessions_min}-{smax}"
        if done > smax:
            warnings.append(
                _caution(
                    rules["session_limit_exceeded"],
                    f"{done} sessions done, over the maximum of {smax} ({rng}).",
                    ["sessions"],
                )
            )
        elif done == smax:
            warnings.append(
                _caution(
                    rules["session_limit_reached"],
                    f"{done} of {smax} sessions done ({rng}).",
                    ["sessions"],
                )
            )
        elif done == smax - 1 and done > 0:
            warnings.append(
                _caution(
                    rules["session_limit_near"],
                    f"{done} of {smax} sessions done ({rng}).",
                    ["sessions"],
                )
            )
        if planned is not None and planned > smax:
            warnings.append(
                _caution(
                    rules["plan_exceeds_limit"],
                    f"{planned} sessions planned; the range is {ec.sessions_min}-{smax} "
                    f"({ec.phase}).",
                    ["plan.planned_sessions"],
                )
            )

    # ---- reassessment 2-4 weeks after therapy starts (S003.12)
    ra = ins.reassessment
    if not sessions:
        reassessment = ReassessmentStatus(
            status="not_started",
            therapy_start=None,
            due_from=None,
            due_by=None,
            done_on=None,
            statement_ids=list(ra.statement_ids),
        )
    else:
        start = sessions[0].date
        due_from = start + timedelta(days=round(ra.weeks_min * 7))
        due_by = start + timedelta(days=round(ra.weeks_max * 7))
        done_on = next((d for d in sorted(episode.reassessments) if d >= due_from), None)
        status: Literal["upcoming", "due", "overdue", "done"]
        window = f"window {due_from} to {due_by}"
        if done_on is not None:
            status = "done"
            notes.append(_note(rules["reassessment_done"], f"Reassessed on {done_on}.", []))
        elif as_of < due_from:
            status = "upcoming"
            notes.append(
                _note(
                    rules["reassessment_upcoming"], f"Reassessment {window}.", ["sessions[0].date"]
                )
            )
        elif as_of <= due_by:
            status = "due"
            warnings.append(
                _caution(
                    rules["reassessment_due"],
                    f"Reassessment {window}.",
                    ["reassessments"],
                )
            )
        else:
            status = "overdue"
            warnings.append(
                _caution(
                    rules["reassessment_overdue"],
                    f"Reassessment was due by {due_by} ({(as_of - due_by).days} days ago).",
                    ["reassessments"],
                )
            )
        reassessment = ReassessmentStatus(
            status=status,
            therapy_start=start,
            due_from=due_from,
            due_by=due_by,
            done_on=done_on,
            statement_ids=list(ra.statement_ids),
        )

    # ---- never monotherapy (S000.25); keep conservative care going (S000.26)
    if sessions:
        lacking = [i for i, s in enumerate(sessions) if not _has_active_care(s)]
        last = len(sessions) - 1
        lapsed = last in lacking and any(_has_active_care(s) for s in sessions[:last])
        if lapsed:
            warnings.append(
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
            warnings.append(
                _caution(
                    rules["monotherapy"],
                    specific,
                    [
                        f
                        for i in mono
                        for f in (f"sessions[{i}].physical_therapy", f"sessions[{i}].home_exercise")
                    ],
                )
            )
        notes.append(_note(rules["continue_conservative_care"], "", []))

    # ---- repeated TPIs as long-term management (S000.01, S000.02)
    if done >= 2:
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
            warnings.append(
                _caution(
                    rules["long_term_repeated_tpis"],
                    f"Repeated TPIs: {'; '.join(why)}.",
                    ["sessions"],
                )
            )

    # ---- complications
    comp = {c.id: c for c in ins.complications}
    for i, s in enumerate(sessions):
        for j, cid in enumerate(s.complications):
            c = comp[cid]
            where = [f"sessions[{i}].complications[{j}]"]
            if c.serious:
                rule = rules["complication_serious"]
                warnings.append(
                    Caution(
                        code=f"complication.{c.id}",
                        text=f"{c.name} after session {i + 1} ({s.date}). {rule.text}",
                        action=c.action,
                        fields=where,
                        statement_ids=list(c.statement_ids) or list(rule.statement_ids),
                    )
                )
            else:
                notes.append(
                    _note(
                        rules["complication_expected"],
                        f"{c.name} after session {i + 1}: {c.action}",
                        where,
                        c.statement_ids,
                    )
                )

    # ---- outcome instruments
    outcomes: list[OutcomeTrend] = []
    for inst in SCORED_INSTRUMENTS:
        series = [(r.number, sc) for r in results for sc in r.scores if sc.instrument == inst]
        if not series:
            continue
        (n0, first), (n1, lastsc) = series[0], series[-1]
        outcomes.append(
            OutcomeTrend(
                instrument=inst,
                name=first.name,
                unit=first.unit,
                first_session=n0,
                first=first.score,
                first_band=first.band,
                latest_session=n1,
                latest=lastsc.score,
                latest_band=lastsc.band,
                change=round(lastsc.score - first.score, 2),
            )
        )
    regions = set(a.regions)
    upper = {"neck", "upper_back"}
    used = {o.instrument for o in outcomes}
    if "odi" in used and regions <= upper:
        notes.append(
            _note(rules["instrument_region"], "ODI recorded for neck/upper back pain.", [])
        )
    if "ndi" in used and not regions & upper:
        notes.append(
            _note(rules["instrument_region"], "NDI recorded for pain outside the neck.", [])
        )
    startback = (
        score("startback", episode.startback, kb, field="startback")
        if (episode.startback is not None)
        else None
    )
    if startback is not None:
        notes.append(
            Reason(
                code="startback",
                text=f"STarT Back: {startback.band_name} (total {startback.raw}/9, psychosocial "
                f"{startback.subscales.get('psychosocial')}/5). Matched care: "
                f"{startback.matched_care}",
                fields=["startback"],
                statement_ids=["S002.34", "S003.10", "S004.04"],
            )
        )

    # ---- when TPIs fail: the re-evaluation worksheet (S000.31, S004.05, S003.12)
    opened: list[Reason] = []
    rev_rule = rules["reevaluate"]
    cls_now = response.classification
    if cls_now in ("non_responder", "relief_too_short"):
        opened.append(
            Reason(
                code=f"course.{cls_now}",
                text=f"Course response {classes[cls_now].name.lower()}. {response.text}",
                fields=[f"sessions[{(response.based_on_session or 1) - 1}].post_nrs"],
                statement_ids=list(classes[cls_now].statement_ids),
            )
        )
    elif cls_now == "partial" and smax is not None and done >= smax:
        opened.append(
            Reason(
                code="course.partial_at_limit",
                text=f"Only a partial response after {done} of {smax} sessions: symptoms persist "
                "despite the planned course.",
                fields=["sessions"],
                statement_ids=["S003.12", "S000.20", "S000.31"],
            )
        )
    worksheet: Worksheet | None = None
    if opened:
        warnings.append(_caution(rev_rule, "", ["sessions"]))
        worksheet = build_worksheet(
            a,
            sessions,
            kb,
            opened_because=opened,
            plan=episode.plan,
            startback=startback,
        )

    ablation = (
        ablation_decision(episode.medial_branch_blocks, policy, knowledge=kb)
        if episode.medial_branch_blocks
        else None
    )

    # ---- headline
    if worksheet is not None:
        headline = "TPIs are not working: re-evaluate before any further injection."
    elif response.classification is None:
        headline = response.text
    else:
        headline = f"{response.name} after {done} session{'s' if done != 1 else ''}."
    if smax is not None:
        headline += f" Sessions {done} of {ec.sessions_min}-{smax} ({ec.phase})."
    n_warn = len(warnings)
    if n_warn:
        headline += f" {n_warn} warning{'s' if n_warn != 1 else ''}."

    return CourseReport(
        headline=headline,
        response=response,
        course=count,
        reassessment=reassessment,
        warnings=warnings,
        notes=notes,
        needs=list({n.field: n for n in needs}.values()),
        sessions=results,
        outcomes=outcomes,
        startback=startback,
        reevaluation=worksheet,
        ablation=ablation,
        assessment=AssessmentSummary(
            verdict=rec.verdict, headline=rec.headline, reasons=list(rec.reasons)
        ),
        policy={
            "min_relief_days": policy.min_relief_days,
            "long_term_course_weeks": policy.long_term_course_weeks,
            "rfa_rule": policy.rfa_rule,
        },
        knowledge_version=kb.version,
        as_of=as_of,
        disclaimer=DISCLAIMER,
    )
