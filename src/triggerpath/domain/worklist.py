"""The clinician's worklist: what needs doing, for whom, by when. Pure (``as_of`` comes in).

:func:`build_worklist` turns the facts of each open episode into work items:

- **reassessment due / overdue / upcoming**: the course engine's own reassessment status
  (:func:`triggerpath.domain.course.evaluate_course`; the window is
  ``instruments.yaml: reassessment`` - 2-4 weeks after the first session, S003.12), so the
  worklist and the course page can never disagree;
- **beyond the course limit**: more sessions than the phase's maximum (S000.20) and no
  assessment recorded since the first session over it (the re-evaluation);
- **planned today**: a plan for ``as_of`` that no session carries out yet;
- **awaiting attestation**: a session documented by someone else for its performer;
- **unsigned**: an assessment, plan or procedure note not yet signed by its owner;
- **draft**: an episode with no assessment yet, a plan gone stale (re-plan it), a course
  whose records the engine cannot read (fix them).

Each item names its owner (who has to act), its due date where it has one, the text and
statement ids of the course rule it comes from, and the record to act on. :func:`select`
filters (mine / all, due window, kinds) and sorts; :func:`counts` is for the navigation.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from triggerpath.domain.course import CourseReport, check_episode, evaluate_course
from triggerpath.domain.episode import Episode
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.knowledge.instruments import CourseRule
from triggerpath.knowledge.loader import Knowledge

ItemKind = Literal[
    "reassessment_overdue",
    "reassessment_due",
    "beyond_course_limit",
    "session_today",
    "awaiting_attestation",
    "unsigned",
    "draft",
    "reassessment_upcoming",
]
#: The default order: most urgent first.
ITEM_KINDS: tuple[ItemKind, ...] = get_args(ItemKind)
Sort = Literal["priority", "due", "patient", "kind"]
SORTS: tuple[Sort, ...] = get_args(Sort)
RecordKind = Literal["episode", "assessment", "plan", "session"]

LABELS: dict[ItemKind, str] = {
    "reassessment_overdue": "Reassessment overdue",
    "reassessment_due": "Reassessment due",
    "beyond_course_limit": "Beyond the course limit",
    "session_today": "Session planned today",
    "awaiting_attestation": "Awaiting attestation",
    "unsigned": "Unsigned",
    "draft": "Draft",
    "reassessment_upcoming": "Reassessment upcoming",
}


@dataclass(frozen=True)
class OpenRecord:
    """An assessment, plan or session of the episode as it stands (active records only)."""

    kind: Literal["assessment", "plan", "session"]
    id: UUID
    version: int
    owner: str  # who signs it: the author, a session's performer
    on: dt.date
    signed: bool = False
    stale: bool = False
    unattested: bool = False
    planned_for: dt.date | None = None
    carried_out: bool = False


@dataclass(frozen=True)
class EpisodeFacts:
    """What the worklist reads of one open episode."""

    patient_id: UUID
    mrn: str
    episode_id: UUID
    opened_by: str
    course: Episode | None  # None: no assessment yet
    #: the second identifier beside the MRN: "FAMILY, Given, born YYYY-MM-DD" where recorded
    patient_label: str | None = None
    assessed_by: str | None = None
    assessed_on: Sequence[dt.date] = ()
    records: Sequence[OpenRecord] = field(default_factory=tuple)
    #: a stored record the current schema cannot read (its field): shown, never skipped
    unreadable: str | None = None

    @property
    def owner(self) -> str:
        return self.assessed_by or self.opened_by


class WorkItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ItemKind
    label: str
    patient_id: UUID
    mrn: str
    patient_label: str | None = None
    episode_id: UUID
    record_kind: RecordKind
    record_id: UUID
    record_version: int | None = None
    owner: str
    due: dt.date | None = None
    text: str
    action: str
    statement_ids: list[str]


class Worklist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: dt.date
    items: list[WorkItem]
    counts: dict[str, int]
    knowledge_version: str


# --------------------------------------------------------------------------- building
def build_worklist(
    episodes: Iterable[EpisodeFacts],
    kb: Knowledge,
    *,
    as_of: dt.date,
    policy: Policy = DEFAULT_POLICY,
) -> Worklist:
    """Every work item of the open episodes as of ``as_of``, most urgent first."""
    items: list[WorkItem] = []
    for e in episodes:
        items += course_items(e, kb, as_of, policy)
        items += record_items(e, as_of)
    ordered = sort_items(items, "priority")
    return Worklist(
        as_of=as_of, items=ordered, counts=counts(ordered), knowledge_version=kb.version
    )


def _item(e: EpisodeFacts, kind: ItemKind, **values: object) -> WorkItem:
    base: dict[str, object] = {
        "kind": kind,
        "label": LABELS[kind],
        "patient_id": e.patient_id,
        "mrn": e.mrn,
        "patient_label": e.patient_label,
        "episode_id": e.episode_id,
        "record_kind": "episode",
        "record_id": e.episode_id,
        "owner": e.owner,
    }
    return WorkItem.model_validate({**base, **values})


def _rule(kb: Knowledge, rule_id: str) -> CourseRule:
    return next(r for r in kb.instruments.course_rules if r.id == rule_id)


def course_items(e: EpisodeFacts, kb: Knowledge, as_of: dt.date, policy: Policy) -> list[WorkItem]:
    """Reassessment and course-limit items, from the course engine's report."""
    if e.unreadable is not None:
        return [
            _item(
                e,
                "draft",
                text=f"A stored record cannot be read under the current schema ({e.unreadable}): "
                "review the episode's records before relying on its course.",
                action="course",
                statement_ids=[],
            )
        ]
    if e.course is None:
        return [
            _item(
                e,
                "draft",
                owner=e.opened_by,
                text="Episode opened; no assessment recorded yet.",
                action="assess",
                statement_ids=[],
            )
        ]
    problems = check_episode(e.course, kb, as_of=as_of)
    if problems:
        first = problems[0]
        return [
            _item(
                e,
                "draft",
                text=f"The course cannot be evaluated: {first}",
                action="course",
                statement_ids=[],
            )
        ]
    report = evaluate_course(e.course, kb, as_of=as_of, policy=policy)
    return [*_reassessment(e, kb, report), *_beyond_limit(e, kb, report)]


def _reassessment(e: EpisodeFacts, kb: Knowledge, report: CourseReport) -> list[WorkItem]:
    ra = report.reassessment
    if ra.status not in ("due", "overdue", "upcoming") or ra.due_from is None:
        return []
    kind: ItemKind = f"reassessment_{ra.status}"  # type: ignore[assignment]
    rule = _rule(kb, kind)
    window = kb.instruments.reassessment
    text = (
        f"{rule.title}: {window.weeks_min:g}-{window.weeks_max:g} weeks after the first "
        f"session on {ra.therapy_start} (window {ra.due_from} to {ra.due_by}). {rule.action}"
    )
    due = ra.due_from if ra.status == "upcoming" else ra.due_by
    ids = list(dict.fromkeys([*ra.statement_ids, *rule.statement_ids]))
    return [_item(e, kind, due=due, text=text, action="follow_up", statement_ids=ids)]


def _beyond_limit(e: EpisodeFacts, kb: Knowledge, report: CourseReport) -> list[WorkItem]:
    count = report.course
    assert e.course is not None
    if count.sessions_max is None or count.done <= count.sessions_max:
        return []
    over_on = e.course.sessions[count.sessions_max].date  # the first session over the limit
    if any(d >= over_on for d in e.assessed_on):
        return []  # re-evaluated: an assessment recorded since
    rule = _rule(kb, "session_limit_exceeded")
    text = (
        f"{count.done} sessions, over the maximum of {count.sessions_max} for the "
        f"{count.phase} phase, and no re-evaluation since {over_on}. {rule.action}"
    )
    ids = list(dict.fromkeys([*rule.statement_ids, *count.statement_ids]))
    return [
        _item(
            e, "beyond_course_limit", due=over_on, text=text, action="reevaluate", statement_ids=ids
        )
    ]


def record_items(e: EpisodeFacts, as_of: dt.date) -> list[WorkItem]:
    """Unsigned, unattested, stale and planned-today items of the episode's records."""
    out: list[WorkItem] = []
    for r in e.records:
        ref = {
            "record_kind": r.kind,
            "record_id": r.id,
            "record_version": r.version,
            "owner": r.owner,
        }
        if r.kind == "plan" and r.planned_for == as_of and not r.carried_out and not r.stale:
            text = "Session planned for today from this plan; record it when performed."
            out.append(
                _item(
                    e,
                    "session_today",
                    **ref,
                    due=as_of,
                    text=text,
                    action="record_session",
                    statement_ids=[],
                )
            )
        if r.kind == "plan" and r.stale:
            text = "Plan is stale (its assessment changed): re-plan it" + (
                "; the signed version no longer stands." if r.signed else " before signing."
            )
            out.append(_item(e, "draft", **ref, text=text, action="replan", statement_ids=[]))
        elif r.unattested:
            text = f"Session of {r.on} documented for {r.owner}: the performer attests it."
            out.append(
                _item(
                    e,
                    "awaiting_attestation",
                    **ref,
                    due=r.on,
                    text=text,
                    action="attest",
                    statement_ids=[],
                )
            )
        elif not r.signed:
            what = "procedure note" if r.kind == "session" else r.kind
            text = f"The {what} of {r.on} is not signed: review and sign it."
            out.append(
                _item(e, "unsigned", **ref, due=r.on, text=text, action="sign", statement_ids=[])
            )
    return out


# --------------------------------------------------------------------------- selecting
def _due_key(item: WorkItem) -> tuple[dt.date, int]:
    return (item.due or dt.date.max, ITEM_KINDS.index(item.kind))


def sort_items(items: Iterable[WorkItem], sort: Sort) -> list[WorkItem]:
    """Priority (kind, then due date), due date, patient (MRN) or kind (alphabetical)."""
    keys = {
        "priority": lambda i: (ITEM_KINDS.index(i.kind), i.due or dt.date.max, i.mrn),
        "due": lambda i: (*_due_key(i), i.mrn),
        "patient": lambda i: (i.mrn, ITEM_KINDS.index(i.kind), i.due or dt.date.max),
        "kind": lambda i: (i.label, i.due or dt.date.max, i.mrn),
    }
    return sorted(items, key=keys[sort])


def select(
    worklist: Worklist,
    *,
    username: str | None = None,
    within_days: int | None = None,
    kinds: Sequence[ItemKind] = (),
    sort: Sort = "priority",
) -> Worklist:
    """The items of ``username`` (None: everyone's), of ``kinds`` (empty: all), sorted.

    The due window: what is due now is always shown; an upcoming reassessment only when
    its window opens within ``within_days`` of ``as_of``.
    """
    horizon = worklist.as_of + dt.timedelta(days=within_days) if within_days is not None else None
    kept = [
        i
        for i in worklist.items
        if (username is None or i.owner == username)
        and (not kinds or i.kind in kinds)
        and (
            i.kind != "reassessment_upcoming"
            or (horizon is not None and i.due is not None and i.due <= horizon)
        )
    ]
    return worklist.model_copy(update={"items": sort_items(kept, sort), "counts": counts(kept)})


def counts(items: Iterable[WorkItem]) -> dict[str, int]:
    """Items per kind (every kind listed, zero included) and ``total``."""
    found = Counter(i.kind for i in items)
    out: dict[str, int] = {k: found.get(k, 0) for k in ITEM_KINDS}
    out["total"] = sum(v for k, v in out.items() if k != "reassessment_upcoming")
    return out
