"""Referral letters and the episode summary.

- :func:`referral_letters`: one letter for every redirect of an assessment (a pain
  generator a TPI cannot treat, ``Recommendation.redirects``) and one for every red flag of
  an urgent referral, each addressed to the service the knowledge base names where the
  redirect or red flag is defined (``pathway.yaml``: ``redirects[].service``,
  ``red_flags[].service``). A letter states the reasons and findings of the recorded
  assessment with their statement ids, the knowledge version and the assessment date.
- :func:`episode_summary`: what an episode of care held, written when it is closed.

Nothing here decides: the letters lay out what the engine found and the knowledge says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from triggerpath.adapters.documents.build import (
    Document,
    PatientLine,
    _base,
    _course_items,
    _ids,
    _render,
)
from triggerpath.domain.course import CourseReport
from triggerpath.domain.recommendation import Reason, Recommendation
from triggerpath.knowledge.loader import Knowledge

RED_FLAG = "red_flag."
PAIN_GENERATOR = "pain_generator."


@dataclass(frozen=True, slots=True)
class Letter:
    """One referral: to whom, why, with what urgency, from which findings."""

    key: str  # redirect code or red_flag.<id>: stable, names the file
    service: str
    subject: str
    description: str
    workup: str | None
    urgency: str  # emergency | urgent | routine
    reasons: tuple[Reason, ...]
    statement_ids: tuple[str, ...]


def _urgent_letters(rec: Recommendation, kb: Knowledge) -> list[Letter]:
    flags = {f"{RED_FLAG}{f.id}": f for f in kb.pathway.red_flags}
    out: list[Letter] = []
    for r in rec.reasons:
        flag = flags.get(r.code)
        if flag is None:
            continue
        out.append(
            Letter(
                key=r.code,
                service=flag.service,
                subject=f"Urgent referral: {flag.name}",
                description=flag.description,
                workup=flag.workup,
                urgency=flag.urgency,
                reasons=(r,),
                statement_ids=_ids(flag.statement_ids, r.statement_ids),
            )
        )
    return out


def _redirect_letters(rec: Recommendation, kb: Knowledge) -> list[Letter]:
    generators = {f"{PAIN_GENERATOR}{g.id}": g for g in kb.pathway.pain_generators}
    redirects = {r.code: r for r in kb.pathway.redirects}
    out: list[Letter] = []
    for code in dict.fromkeys([*rec.redirects, *([rec.redirect] if rec.redirect else [])]):
        target = redirects[code]
        because = tuple(
            r
            for r in [*rec.reasons, *rec.findings]
            if r.code in generators and generators[r.code].redirect == code
        )
        workups = [generators[r.code].workup for r in because]
        out.append(
            Letter(
                key=code,
                service=target.service,
                subject=f"Referral: {target.name}",
                description=target.description,
                workup=" ".join(dict.fromkeys(workups)) or None,
                urgency="routine",
                reasons=because,
                statement_ids=_ids(target.statement_ids, *(r.statement_ids for r in because)),
            )
        )
    return out


def letters_for(rec: Recommendation, kb: Knowledge) -> list[Letter]:
    """The referrals a recorded assessment calls for: urgent ones first."""
    return _urgent_letters(rec, kb) + _redirect_letters(rec, kb)


def referral_letters(
    rec: Recommendation,
    kb: Knowledge,
    patient: PatientLine,
    *,
    on: date,
    author: str,
    clinic: str = "TriggerPath clinic",
) -> list[Document]:
    """One referral letter per redirect and per red flag (see the module docstring)."""
    docs: list[Document] = []
    other = [f for f in rec.findings if not f.code.startswith((RED_FLAG, PAIN_GENERATOR))]
    for letter in letters_for(rec, kb):
        title = f"Referral letter – {letter.service}"
        html = _render(
            "referral.html",
            **_base(kb, patient, on, title, [f"rule.{r.code}" for r in letter.reasons]),
            letter=letter,
            rec=rec,
            other_findings=other,
            author=author,
            clinic=clinic,
        )
        ids = _ids(letter.statement_ids, *(f.statement_ids for f in other))
        docs.append(Document("referral_letter", title, "clinician", html, ids, key=letter.key))
    return docs


@dataclass(frozen=True, slots=True)
class SummarySession:
    """One session of the episode as the summary lists it."""

    performed_at: str
    muscles: str
    dose: str
    complications: str
    safety_event: bool = False


@dataclass(frozen=True, slots=True)
class SummaryAssessment:
    as_of: date
    verdict: str
    headline: str
    statement_ids: tuple[str, ...]
    signed: bool


@dataclass(frozen=True, slots=True)
class EpisodeSummary:
    """What an episode held, gathered by the caller from the stored records."""

    regions: Sequence[str]
    onset: date | None
    opened: date
    closed_on: date | None
    status: str
    assessments: Sequence[SummaryAssessment] = ()
    sessions: Sequence[SummarySession] = ()
    referrals: Sequence[str] = ()
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def episode_summary(
    summary: EpisodeSummary,
    report: CourseReport | None,
    kb: Knowledge,
    patient: PatientLine,
    *,
    on: date,
) -> Document:
    """The episode summary written on closing an episode: regions and dates, each
    assessment's verdict (with statement ids), each session, the course and referrals."""
    title = "Episode summary"
    html = _render(
        "episode_summary.html",
        **_base(kb, patient, on, title, _course_items(kb)),
        s=summary,
        report=report,
    )
    ids = _ids(
        *(a.statement_ids for a in summary.assessments),
        report.statement_ids if report else [],
    )
    return Document("episode_summary", title, "clinician", html, ids)
