"""Which session an outcome belongs to, and whether it was measured before or after it.

A course is read session by session: the pain *before* an injection is that session's
baseline, a score measured *after* it is that session's follow-up. Filing a same-day
post-procedure score as the next session's baseline makes the course show the wrong pain
and lose the follow-up's physical-therapy answers (issue 11 §4), so the assignment is one
pure rule here, used by every reader of stored outcomes.

The rule, in order:

1. an explicit relation (``before``/``after``, chosen on the form) is kept as given;
2. an outcome linked to a session gets its relation from the times: an earlier day is
   ``before``, a later day ``after``; on the session's own day it is ``after`` when it was
   taken (or, lacking a time, recorded) after the session's time, otherwise ``before``;
3. an outcome linked to no session is placed by time: ``after`` the last session at or
   before it, or ``before`` the next session when it precedes them all (or is marked
   ``before``).

Nothing here reads a clock or a database: the caller passes the times it knows.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

Relation = Literal["before", "after"]
RELATIONS: tuple[Relation, ...] = ("before", "after")


@dataclass(frozen=True, slots=True)
class SessionTime:
    """A session as the timeline sees it: an id and when it was performed."""

    key: Hashable
    at: datetime


@dataclass(frozen=True, slots=True)
class OutcomeTime:
    """An outcome as the timeline sees it.

    ``at`` is the best time known for the measurement (e.g. when it was recorded); it only
    decides between ``before`` and ``after`` on the session's own day.
    """

    key: Hashable
    measured_on: date
    session: Hashable | None = None
    relation: Relation | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an outcome sits: the session's key and the relation to it."""

    session: Hashable
    relation: Relation


def relation_to(session_at: datetime, outcome: OutcomeTime) -> Relation:
    """``before`` or ``after`` the session performed at ``session_at`` (rule 1 and 2)."""
    if outcome.relation is not None:
        return outcome.relation
    day = session_at.date()
    if outcome.measured_on != day:
        return "before" if outcome.measured_on < day else "after"
    if outcome.at is not None and outcome.at > session_at:
        return "after"
    return "before"


def _by_time(sessions: Sequence[SessionTime], outcome: OutcomeTime) -> Placement | None:
    """Rule 3: ``after`` the last session at or before the outcome, else ``before`` the next.

    An outcome explicitly marked ``before`` goes to the next session after it (None when no
    such session is recorded yet: it is the baseline of a session still to come).
    """
    ordered = sorted(sessions, key=lambda s: s.at)
    timed = OutcomeTime(outcome.key, outcome.measured_on, at=outcome.at)
    after = [s for s in ordered if relation_to(s.at, timed) == "after"]
    upcoming = [s for s in ordered if relation_to(s.at, timed) == "before"]
    if outcome.relation != "before" and after:
        return Placement(after[-1].key, "after")
    return Placement(upcoming[0].key, "before") if upcoming else None


def place(sessions: Sequence[SessionTime], outcome: OutcomeTime) -> Placement | None:
    """The session an outcome belongs to and its relation (None when there are no sessions)."""
    if not sessions:
        return None
    linked = next((s for s in sessions if s.key == outcome.session), None)
    if linked is not None:
        return Placement(linked.key, relation_to(linked.at, outcome))
    return _by_time(sessions, outcome)


def assign(
    sessions: Sequence[SessionTime], outcomes: Sequence[OutcomeTime]
) -> dict[Hashable, Placement]:
    """Every outcome's placement, by outcome key (outcomes with no session are left out)."""
    out: dict[Hashable, Placement] = {}
    for o in outcomes:
        placed = place(sessions, o)
        if placed is not None:
            out[o.key] = placed
    return out
