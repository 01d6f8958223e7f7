"""The episode file: what ``triggerpath course`` reads, and its checks.

The input side of the course (plan summary, sessions, medial branch blocks, the episode
around them) lives here, below both :mod:`triggerpath.domain.course` (which evaluates it)
and :mod:`triggerpath.domain.reevaluation` (which reviews failing sessions), so neither
imports the other back::

    episode  <──  reevaluation  <──  course
       ^                               |
       └───────────────────────────────┘

:func:`parse_episode` validates raw JSON into an :class:`Episode`; :func:`check_episode`
adds the knowledge-base and date checks the schema cannot express.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.scoring import Answer, score
from triggerpath.domain.validation import check_ids, parse_input
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.loader import Knowledge

Guidance = Literal["palpation", "ultrasound", "fluoroscopy"]
SCORED_INSTRUMENTS: tuple[Literal["peg", "odi", "ndi"], ...] = ("peg", "odi", "ndi")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanTarget(_In):
    """A target as the procedure planner writes it (``triggerpath plan``: targets[])."""

    muscle: str = Field(description="muscle id (triggerpath knowledge muscles)")
    side: Literal["left", "right", "bilateral"] | None = None
    sites: int | None = Field(default=None, ge=1, le=20)
    volume_ml_per_site: float | None = Field(default=None, gt=0, le=10)


class Technique(_In):
    """The technique fields a plan and a session share."""

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


class PlanSummary(Technique):
    """What was planned (from the procedure planner or typed in); every field optional."""

    planned_sessions: int | None = Field(default=None, ge=1, le=20)


class Session(Technique):
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


class MedialBranchBlock(_In):
    """One diagnostic medial branch block and the relief it gave."""

    date: dt.date | None = None
    level: str | None = Field(default=None, max_length=100, description="e.g. 'L4-L5 right'")
    relief_pct: float = Field(ge=0, le=100, description="relief of the index pain, 0-100%")


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


def parse_episode(data: Any, knowledge: Knowledge, *, as_of: dt.date) -> Episode:
    """Validate raw JSON-like data into an :class:`Episode`, or raise ``InvalidInput``.

    Besides the schema: knowledge-base ids (muscles, modalities, complications), dates in
    order and not after ``as_of``, and every questionnaire answer in range.
    """
    return parse_input(Episode, data, "episode", lambda e: check_episode(e, knowledge, as_of=as_of))


def _unknown_muscles(t: Technique, where: str, kb: Knowledge) -> list[FieldProblem]:
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
    """Every problem the schema cannot see, in field order: ids, dates, answers in range."""
    kb = knowledge
    problems = check_ids(episode.assessment, kb, prefix="assessment")
    if episode.plan:
        problems.extend(_unknown_muscles(episode.plan, "plan", kb))
    previous: dt.date | None = None
    for i, s in enumerate(episode.sessions):
        problems.extend(_session_problems(s, f"sessions[{i}]", previous, kb, as_of))
        previous = s.date
    for i, d in enumerate(episode.reassessments):
        if d > as_of:
            problems.append(FieldProblem(f"reassessments[{i}]", f"{d} is after {as_of} (as of)"))
    if episode.startback is not None:
        problems.extend(_answer_problems("startback", episode.startback, kb, "startback"))
    for i, b in enumerate(episode.medial_branch_blocks):
        if b.date is not None and b.date > as_of:
            problems.append(
                FieldProblem(f"medial_branch_blocks[{i}].date", f"{b.date} is after {as_of}")
            )
    return problems


def _session_problems(
    s: Session, where: str, previous: dt.date | None, kb: Knowledge, as_of: dt.date
) -> list[FieldProblem]:
    """One session: dated in order and not after ``as_of``, known ids, answers in range."""
    problems: list[FieldProblem] = []
    if s.date > as_of:
        problems.append(FieldProblem(f"{where}.date", f"{s.date} is after {as_of} (as of)"))
    if previous is not None and s.date <= previous:
        problems.append(
            FieldProblem(
                f"{where}.date", f"{s.date} must be after the previous session ({previous})"
            )
        )
    problems.extend(_unknown_muscles(s, where, kb))
    complications = {c.id for c in kb.instruments.complications}
    problems.extend(
        FieldProblem(
            f"{where}.complications[{j}]",
            f"unknown complication {c!r}; known: {', '.join(sorted(complications))}",
        )
        for j, c in enumerate(s.complications)
        if c not in complications
    )
    if s.post_nrs is None and s.relief_duration_days is not None:
        problems.append(
            FieldProblem(f"{where}.post_nrs", "needed when relief_duration_days is given")
        )
    for inst in SCORED_INSTRUMENTS:
        answers = getattr(s, inst)
        if answers is not None:
            problems.extend(_answer_problems(inst, answers, kb, f"{where}.{inst}"))
    return problems


def _answer_problems(
    instrument: str, answers: list[Answer], kb: Knowledge, field: str
) -> list[FieldProblem]:
    """The problems scoring finds in a questionnaire's answers (none when it scores)."""
    try:
        score(instrument, answers, kb, field=field)
    except InvalidInput as exc:
        return list(exc.problems)
    return []
