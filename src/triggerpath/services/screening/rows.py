"""Screen one patient: the pathway run on what the coded record says.

Each patient's FHIR record (read by the FHIR adapter, handed over as a
:class:`ScreeningSnapshot`) gives a *partial* assessment — what the codes say, nothing
guessed — and the engine's verdict on it. For a record without an examination the verdict
is usually ``insufficient_findings``; what a quality team looks for is the rest: red flags
and other pain generators coded in the chart, contraindications and bleeding-risk
medicines, TPIs given beyond the course limits of S000.20, and what is missing from the
records. Nothing here writes anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from triggerpath.domain.engine import assess
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.validation import parse_assessment
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.screening.ports import ScreeningSnapshot


@dataclass(frozen=True)
class ScreenRow:
    """One patient's line in the screen."""

    patient_id: str
    age_years: int | None
    sex: str
    regions: list[str]
    all_regions_screened: bool  # the record codes no pain site, so every region was screened
    relevant: bool  # back/neck pain documented or TPIs on record
    verdict: str | None  # None when the record cannot be assessed (see problems)
    redirect: str | None
    findings: list[str]  # red flags, other generators, contraindications found in the codes
    cautions: list[str]
    tpis_on_record: int
    tpis_over_course_limit: bool
    needs: int  # blocking needs (unexamined findings) for a full assessment
    problems: list[str]
    statement_ids: list[str]


@dataclass
class ScreenSummary:
    patients: int = 0
    relevant: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    redirects: Counter[str] = field(default_factory=Counter)
    cautions: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    over_course_limit: int = 0
    not_assessable: int = 0


def screen_patient(
    snap: ScreeningSnapshot, kb: Knowledge, *, policy: Policy = DEFAULT_POLICY
) -> ScreenRow:
    """Run the pathway on one record's partial assessment (codes only; no guessing)."""
    tpis = len(snap.tpis or [])
    # the largest course the sources plan for is 8 sessions (chronic; S000.20)
    over = tpis > max(p.sessions_max for p in kb.pathway.duration_phases)
    findings: list[str] = []
    cautions: list[str] = []
    ids: set[str] = {"S000.20"} if over else set()
    verdict: str | None = None
    redirect: str | None = None
    needs = 0
    problems: list[str] = []
    try:
        # no pain site coded: every region is screened so the safety checks still run
        data = snap.assessment_input(screen_all_regions=True)
        assessment = parse_assessment(data, kb)
    except InvalidInput as exc:
        problems = [str(p) for p in exc.problems]
    else:
        rec = assess(assessment, kb, as_of=snap.as_of, policy=policy)
        coded = [
            r
            for r in [*rec.reasons, *rec.findings]
            if r.code.startswith(("red_flag.", "pain_generator.", "contraindication."))
        ]
        findings = list(dict.fromkeys(r.code for r in coded))
        cautions = [c.code for c in rec.cautions]
        ids |= {sid for r in coded for sid in r.statement_ids}
        ids |= {sid for c in rec.cautions for sid in c.statement_ids}
        verdict, redirect = rec.verdict, rec.redirect
        needs = sum(1 for n in rec.needs if n.blocking)
    return ScreenRow(
        patient_id=snap.patient_id or "(unknown)",
        age_years=snap.age_years,
        sex=snap.sex,
        regions=list(snap.regions),
        all_regions_screened=not snap.regions,
        relevant=snap.relevant,
        verdict=verdict,
        redirect=redirect,
        findings=findings,
        cautions=cautions,
        tpis_on_record=tpis,
        tpis_over_course_limit=over,
        needs=needs,
        problems=problems,
        statement_ids=sorted(ids),
    )


def summarise(rows: Iterable[ScreenRow]) -> ScreenSummary:
    s = ScreenSummary()
    for r in rows:
        s.patients += 1
        s.relevant += r.relevant
        s.over_course_limit += r.tpis_over_course_limit
        if r.verdict is None:
            s.not_assessable += 1
            continue
        s.verdicts[r.verdict] += 1
        if r.redirect:
            s.redirects[r.redirect] += 1
        s.cautions.update(r.cautions)
        s.findings.update(r.findings)
    return s
