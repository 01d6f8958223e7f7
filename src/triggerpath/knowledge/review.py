"""Clinical review status of each knowledge item (``data/review.yaml``, issue 11 §7).

Clinical content that nobody qualified has checked must say so wherever it is used. Each
item the engine relies on — dose limits, technique cards, rules (red flags,
contraindications, cautions, pain generators, supporting indications, course rules) and
outcome instruments — has one entry: ``reviewed`` with the reviewer's role and the date, or
``not_reviewed``. The file is validated when the knowledge base loads: an item without an
entry, an entry naming no item, or a review without role or date is a
:class:`~triggerpath.errors.KnowledgeError`, so the status can never silently fall out of
step with the content.

Item ids are ``<kind>.<id>``: ``dose_limit.lidocaine``, ``steroid.triamcinolone``,
``technique_card.quadratus_lumborum``, ``rule.red_flag.cauda_equina``,
``instrument.odi`` (see :func:`item_ids`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Protocol

from pydantic import Field, model_validator

from triggerpath.errors import FieldProblem, KnowledgeError
from triggerpath.knowledge.base import Strict
from triggerpath.knowledge.datafile import validated
from triggerpath.knowledge.injectates import Injectates
from triggerpath.knowledge.instruments import Instruments
from triggerpath.knowledge.schema import Anatomy, Muscle, Pathway


class Knowledge(Protocol):
    """What the review status reads of the knowledge base (the loader's ``Knowledge``
    satisfies it; this module does not import the loader, which calls it)."""

    @property
    def injectates(self) -> Injectates: ...
    @property
    def anatomy(self) -> Anatomy: ...
    @property
    def pathway(self) -> Pathway: ...
    @property
    def instruments(self) -> Instruments: ...
    @property
    def muscles(self) -> dict[str, Muscle]: ...
    @property
    def extras(self) -> dict[str, Any]: ...


FILE = "review.yaml"
EXTRAS_KEY = "review"
#: the one line every output and document shows while content awaits review
NOTICE = "Content not yet clinically reviewed"
KINDS = {
    "dose_limit": "dose limits",
    "steroid": "corticosteroid doses",
    "technique_card": "technique cards",
    "rule": "rules",
    "instrument": "instruments",
}


class Review(Strict):
    """One item's review status (who reviewed it is recorded by role, not by name)."""

    status: Literal["reviewed", "not_reviewed"]
    reviewer_role: str | None = Field(default=None, min_length=3, max_length=120)
    date: dt.date | None = None
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _complete(self) -> Review:
        if self.status == "reviewed" and (self.reviewer_role is None or self.date is None):
            raise ValueError("a reviewed item needs reviewer_role and date")
        if self.status == "not_reviewed" and (self.reviewer_role or self.date):
            raise ValueError("reviewer_role/date only for a reviewed item")
        return self


class ReviewLog(Strict):
    """``review.yaml``: item id -> review."""

    items: dict[str, Review]

    def pending(self) -> list[str]:
        """Item ids that await clinical review, sorted."""
        return sorted(i for i, r in self.items.items() if r.status != "reviewed")

    def unreviewed(self, item_ids: Iterable[str]) -> list[str]:
        """Of ``item_ids``, those not reviewed (unknown ids count as not reviewed)."""
        out = []
        for i in dict.fromkeys(item_ids):
            r = self.items.get(i)
            if r is None or r.status != "reviewed":
                out.append(i)
        return out

    def notice(self, item_ids: Iterable[str] | None = None) -> str | None:
        """One line for an output that used ``item_ids`` (all items when None); None once
        every one of them is reviewed."""
        ids = self.pending() if item_ids is None else self.unreviewed(item_ids)
        if not ids:
            return None
        shown = ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")
        return f"{NOTICE}: {shown}."


def item_ids(kb: Knowledge) -> list[str]:
    """Every knowledge item that needs a review status."""
    p = kb.pathway
    ids = [f"dose_limit.{a.id}" for a in kb.injectates.local_anesthetics]
    ids += [f"steroid.{a.id}" for a in kb.injectates.corticosteroids.agents]
    ids += [f"technique_card.{m.id}" for m in kb.anatomy.muscles]
    for kind, rules in (
        ("red_flag", p.red_flags),
        ("contraindication", p.contraindications),
        ("caution", p.cautions),
        ("pain_generator", p.pain_generators),
        ("supporting_indication", p.supporting_indications),
    ):
        ids += [f"rule.{kind}.{r.id}" for r in rules]
    ids += [f"rule.course.{r.id}" for r in kb.instruments.course_rules]
    ids += [f"instrument.{i.id}" for i in kb.instruments.instruments]
    return ids


def check_review(log: ReviewLog, kb: Knowledge) -> Iterator[FieldProblem]:
    """Every item has exactly one entry and every entry names an item."""
    known = item_ids(kb)
    for i in known:
        if i not in log.items:
            yield FieldProblem(f"{FILE}:items.{i}", "no review status for this knowledge item")
    for i in log.items:
        if i not in set(known):
            yield FieldProblem(f"{FILE}:items.{i}", "names no knowledge item")


def attach_review(kb: Knowledge) -> Iterator[FieldProblem]:
    """Load, validate and attach the review log to ``kb`` (the loader's hook)."""
    try:
        log = validated(FILE, ReviewLog)
    except KnowledgeError as exc:
        yield from exc.problems
        return
    problems = list(check_review(log, kb))
    if not problems:
        kb.extras[EXTRAS_KEY] = log
    yield from problems


def review_of(kb: Knowledge) -> ReviewLog:
    """The knowledge base's review log (every item pending when none was attached)."""
    log = kb.extras.get(EXTRAS_KEY)
    if isinstance(log, ReviewLog):
        return log
    return ReviewLog(items={i: Review(status="not_reviewed") for i in item_ids(kb)})


def items_for(
    kb: Knowledge, *, muscles: Iterable[str] = (), agents: Iterable[str] = ()
) -> list[str]:
    """The item ids a plan, note or sheet for these muscles and agents relies on."""
    ids = [f"technique_card.{m}" for m in dict.fromkeys(muscles) if m in kb.muscles]
    la = {a.id for a in kb.injectates.local_anesthetics}
    ids += [f"dose_limit.{a}" for a in dict.fromkeys(agents) if a in la]
    return ids
