"""The kernel's context and its one way to refuse (see :mod:`triggerpath.services.kernel`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from triggerpath.domain import integrity as rules
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.errors import FieldProblem, WriteRefused
from triggerpath.knowledge.integrity import Integrity, load_integrity
from triggerpath.knowledge.loader import Knowledge, load_knowledge
from triggerpath.services.model import Actor
from triggerpath.services.uow import UnitOfWork


@dataclass(frozen=True)
class Context:
    """What every rule may depend on, fixed for one write: who, when, which rules."""

    actor: Actor
    now: datetime
    kb: Knowledge
    policy: Policy
    policy_version: int
    bounds: Integrity
    today: date
    #: the store the rules read (a patient's recorded sessions, a plan's assessment)
    uow: UnitOfWork

    @property
    def skew(self) -> timedelta:
        return timedelta(minutes=self.policy.clock_skew_minutes)

    def ledger_window(self, at: datetime) -> tuple[datetime, datetime]:
        """The dose ledger's window around ``at`` (24 hours either side, by the bounds data)."""
        return rules.ledger_window(at, self.bounds.session.ledger_hours)


def current_policy(uow: UnitOfWork) -> tuple[int, Policy]:
    """The clinic policy in force and its version (0 = the built-in defaults)."""
    found = uow.policy.current()
    if found is None:
        return 0, DEFAULT_POLICY
    version, data, _at, _by = found
    return version, Policy.model_validate(data)


def context(
    uow: UnitOfWork,
    actor: Actor,
    kb: Knowledge | None,
    now: datetime,
    today: date | None = None,
) -> Context:
    """The kernel's context for one write: the clinic policy in force and the bounds data.

    ``today`` is the clinic's calendar date (the planner's ``as_of``); default ``now``'s date.
    """
    version, policy = current_policy(uow)
    knowledge = kb if kb is not None else load_knowledge()
    bounds = load_integrity()
    return Context(actor, now, knowledge, policy, version, bounds, today or now.date(), uow)


def refuse(problems: list[FieldProblem]) -> None:
    """Raise one :class:`WriteRefused` with every problem, if there is any."""
    if problems:
        raise WriteRefused(problems)


def _present(*found: FieldProblem | None) -> list[FieldProblem]:
    return [p for p in found if p is not None]


def admit_text(data: Any, prefix: str = "") -> None:
    """Control characters anywhere in what is about to be stored (the one text rule)."""
    refuse(rules.text_problems(data, prefix))
