"""``patient-view``: the TPI status card when a chart opens, then the safety cards."""

from __future__ import annotations

from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import Recommendation
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.cds._builder import Cards, CardText, SuggestionSpec, Why
from triggerpath.services.cds._drafts import Evaluation
from triggerpath.services.cds._model import NO_LINKS, CdsOptions, Indicator, ids
from triggerpath.services.cds._ports import Fhir, Record
from triggerpath.services.cds._record import (
    CourseStatus,
    course_status,
    evidence_for,
    needs_lines,
    recent_anesthetic,
    run_engine,
)
from triggerpath.services.cds._safety import anesthetic_24h_card, no_assessment_card, safety_cards

VERDICT_SUMMARY = {
    "urgent_referral": "Red flag in the record: urgent work-up before any TPI",
    "not_indicated": "TPI not indicated: the pain has another source",
    "insufficient_findings": "TPI not yet supported: the record lacks the examination findings",
    "contraindicated": "TPI contraindicated now",
    "conservative_care_first": "Stepped conservative care comes before TPIs",
    "tpi_appropriate": "TPI may be offered within comprehensive care",
}
VERDICT_INDICATOR: dict[str, Indicator] = {
    "urgent_referral": "critical",
    "contraindicated": "critical",
    "not_indicated": "warning",
}


def redirect_name(kb: Knowledge, code: str | None) -> str:
    """The name of the pathway a non-TPI verdict redirects to ("" when none)."""
    return next((r.name for r in kb.pathway.redirects if r.code == code), "")


def _status_lines(
    b: Cards, rec: Recommendation, course: CourseStatus, all_regions: bool
) -> list[str]:
    """The status card's detail: verdict and reasons, needs, course, 24 h doses, conditions."""
    snap = b.snap
    lines = [f"**{rec.headline}**"]
    lines += [f"- {r.text}{ids(r.statement_ids)}" for r in rec.reasons]
    lines += [f"- Also found: {r.text}{ids(r.statement_ids)}" for r in rec.findings]
    lines += needs_lines(rec)
    lines += course.lines(snap.now)
    given = recent_anesthetic(snap)
    if given:
        lines.append(
            f"**Local anesthetic in the last 24 h:** {'; '.join(given)}{ids(['S000.28'])}."
        )
    if all_regions:
        lines.append("No pain site is coded in the record, so every back region was screened.")
    conditions = "; ".join(str(e) for e in snap.pain_conditions) or "none"
    lines.append(f"**Pain conditions on record:** {conditions}")
    return lines


def _status_card(b: Cards, rec: Recommendation, course: CourseStatus, all_regions: bool) -> None:
    """The TPI status: verdict, why, what is missing, the course; an ESI referral if radicular."""
    summary = VERDICT_SUMMARY[rec.verdict]
    if rec.verdict == "not_indicated" and rec.redirect:
        summary = f"TPI not indicated. {redirect_name(b.kb, rec.redirect)}"
    sugg: list[SuggestionSpec] = []
    if rec.redirect == "epidural_steroid_injection":
        referral = b.referral("epidural_steroid_injection", rec.headline, ["S000.22", "S004.09"])
        sugg.append(("Refer for epidural steroid injection evaluation", [referral], True))
    reasons = [*rec.reasons, *rec.findings]
    text = CardText(
        "tpi-status",
        "TPI status",
        summary,
        VERDICT_INDICATOR.get(rec.verdict, "info"),
        _status_lines(b, rec, course, all_regions),
        [s for r in reasons for s in r.statement_ids] + ["S000.20"],
    )
    why = Why(
        f"verdict.{rec.verdict}",
        rec.verdict,
        [*b.snap.pain_conditions, *evidence_for(b.snap, b.snap.findings)],
        sorted({f for r in rec.reasons for f in r.fields}),
        {
            "needs": [n.field for n in rec.needs],
            "course": {"sessions": course.count, "limitReached": course.limit_reached},
        },
    )
    b.add(text, why, sugg)


def patient_view(
    snap: Record,
    kb: Knowledge,
    *,
    hook_instance: str,
    fhir: Fhir,
    options: CdsOptions = NO_LINKS,
    policy: Policy = DEFAULT_POLICY,
) -> Evaluation:
    """Cards for opening a chart: nothing unless back/neck pain or TPIs are on record."""
    ev = Evaluation("patient-view")
    if not snap.relevant:
        return ev
    rec, all_regions, problems = run_engine(snap, kb, policy)
    b = Cards("patient-view", hook_instance, snap, kb, options, fhir, [], all_regions)
    ev.recommendation, ev.cards = rec, b.cards
    if rec is None:
        no_assessment_card(b, problems)
        return ev
    _status_card(b, rec, course_status(snap, rec, kb, policy), all_regions)
    safety_cards(b, rec, ordering=False)
    anesthetic_24h_card(b)
    return ev
