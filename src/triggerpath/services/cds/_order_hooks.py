"""``order-select`` / ``order-sign``: cards for TPI draft orders, each naming the orders.

The order of cards: red flag, non-myofascial pain, safety, 24 h doses, course limit,
document the examination, dose check per anesthetic order, physical therapy alongside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from triggerpath.domain.dosing import DoseCheck
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import Reason, Recommendation
from triggerpath.knowledge.loader import Knowledge
from triggerpath.services.cds._builder import Cards, CardText, SuggestionSpec, Why
from triggerpath.services.cds._dose import dose_card
from triggerpath.services.cds._drafts import Evaluation, TpiOrder, concept_matches, tpi_orders
from triggerpath.services.cds._model import NO_LINKS, CdsOptions, TraceEvidence, ids
from triggerpath.services.cds._patient_view import redirect_name
from triggerpath.services.cds._ports import Fhir, Record
from triggerpath.services.cds._record import (
    CourseStatus,
    course_status,
    evidence_for,
    needs_lines,
    run_engine,
    statement_ids_of,
)
from triggerpath.services.cds._safety import anesthetic_24h_card, no_assessment_card, safety_cards

REMOVE = "Remove the TPI order"


def _red_flag_card(b: Cards, rec: Recommendation) -> None:
    """Urgent referral: the red flags come before any TPI."""
    fields = [f for r in rec.reasons for f in r.fields]
    text = CardText(
        "red-flag",
        "Red flag",
        "Red flag in the record: urgent work-up before this TPI",
        "critical",
        [f"- {r.text}{ids(r.statement_ids)}" for r in rec.reasons],
        statement_ids_of(rec.reasons),
    )
    why = Why("verdict.urgent_referral", rec.verdict, evidence_for(b.snap, fields), fields)
    b.add(text, why, [(REMOVE, b.delete_orders(), True)])


def _redirect_suggestions(b: Cards, redirect: str | None) -> list[SuggestionSpec]:
    """Replace the TPI by an epidural referral when radicular; or just remove it."""
    sugg: list[SuggestionSpec] = []
    if redirect == "epidural_steroid_injection":
        referral = b.referral(
            "epidural_steroid_injection",
            "Radicular pain: TPIs do not treat it",
            ["S000.22", "S000.33", "S004.09"],
        )
        sugg.append(
            (
                "Replace the TPI with an epidural steroid injection referral",
                [*b.delete_orders(), referral],
                True,
            )
        )
    sugg.append((REMOVE, b.delete_orders(), False))
    return sugg


def _non_myofascial_card(b: Cards, rec: Recommendation, generators: Sequence[Reason]) -> None:
    """The pain has another generator: say where to send the patient instead."""
    redirect = rec.redirect or (rec.redirects[0] if rec.redirects else None)
    name = redirect_name(b.kb, redirect)
    fields = [f for r in generators for f in r.fields]
    text = CardText(
        "non-myofascial",
        "Pain not primarily muscular",
        f"Not myofascial pain, no TPI. {name or 'Evaluate the other pain source'}",
        "warning",
        [f"- {r.text}{ids(r.statement_ids)}" for r in generators] + [f"**Redirect:** {name}"],
        statement_ids_of(generators),
    )
    why = Why("pain_generator", rec.verdict, evidence_for(b.snap, fields), fields)
    b.add(text, why, _redirect_suggestions(b, redirect))


def _course_limit_card(b: Cards, course: CourseStatus, policy: Policy) -> None:
    """The course has reached its expected number of sessions: reassess first."""
    text = CardText(
        "course-limit",
        "Course limit",
        f"{course.count} TPI sessions in {policy.ehr_course_window_days} days: reassess "
        f"before more (expected {course.sessions_min}-{course.sessions_max})",
        "warning",
        [
            *course.lines(b.snap.now),
            "Little or short-lived relief after a full course calls for re-evaluation of the "
            f"diagnosis and perpetuating factors{ids(['S000.31', 'S004.05', 'S003.12'])}.",
        ],
        ["S000.20", "S003.12", "S000.31", "S004.05"],
    )
    evidence = [
        TraceEvidence(
            t.reference,
            t.code,
            t.display,
            "tpi_procedure",
            t.when.date().isoformat() if t.when else None,
        )
        for t in b.snap.tpis or []
    ]
    b.add(text, Why("course.sessions", evidence=evidence, inputs=["Procedure (CPT 20552/20553)"]))


def _document_findings_card(b: Cards, rec: Recommendation) -> None:
    """The record cannot show trigger point criteria: document the examination first."""
    text = CardText(
        "document-findings",
        "Document the examination",
        "Before this TPI: document the trigger point examination and screens",
        "info",
        [
            f"**{rec.headline}** The EHR record alone cannot show the trigger point criteria "
            "(taut band, tender spot, recognised or referred pain)"
            f"{ids(['S000.09', 'S000.10', 'S002.10'])}.",
            *needs_lines(rec),
        ],
        ["S000.09", "S000.10", "S002.10", "S002.32"],
    )
    inputs = [n.field for n in rec.needs if n.blocking]
    b.add(text, Why(f"verdict.{rec.verdict}", rec.verdict, inputs=inputs))


def _has_physical_therapy(b: Cards, draft_orders: Any) -> bool:
    """Physical therapy on record or among the draft orders."""
    if any(e.valueset == "physical_therapy" for e in b.snap.service_requests):
        return True
    return any(
        "physical_therapy" in concept_matches(b.kb, r.get("code"))[0]
        for r in b.fhir.bundle_resources(draft_orders, "context.draftOrders")
        if r.get("resourceType") == "ServiceRequest"
    )


def _comprehensive_care_card(b: Cards, rec: Recommendation) -> None:
    """TPIs go with physical therapy: suggest the referral."""
    text = CardText(
        "comprehensive-care",
        "Comprehensive care",
        "TPIs belong with physical therapy: add a physical therapy referral",
        "info",
        [
            "TPIs give temporary relief and are used only within a plan with physical "
            f"therapy, education and home exercise{ids(['S000.25', 'S000.26', 'S000.01'])}. "
            "No physical therapy referral is on record or among the draft orders.",
        ],
        ["S000.25", "S000.26", "S000.01"],
    )
    referral = b.referral(
        "physical_therapy",
        "Myofascial back pain: active care alongside trigger point injections",
        ["S000.25", "S002.27"],
    )
    why = Why("comprehensive_care.physical_therapy", rec.verdict)
    b.add(text, why, [("Add a physical therapy referral", [referral], True)])


def _order_cards(
    b: Cards, rec: Recommendation, draft_orders: Any, kb: Knowledge, policy: Policy
) -> DoseCheck | None:
    """Every card of an order hook for an assessed record; the last dose check."""
    if rec.verdict == "urgent_referral":
        _red_flag_card(b, rec)
    generators = [r for r in [*rec.reasons, *rec.findings] if r.code.startswith("pain_generator.")]
    if generators:
        _non_myofascial_card(b, rec, generators)
    safety_cards(b, rec, ordering=True)
    anesthetic_24h_card(b)
    course = course_status(b.snap, rec, kb, policy)
    if course.limit_reached:
        _course_limit_card(b, course, policy)
    if rec.verdict in ("insufficient_findings", "conservative_care_first"):
        _document_findings_card(b, rec)
    dose = None
    for order in b.orders:
        if order.kind == "anesthetic":
            dose = dose_card(b, order, b.snap, kb, policy) or dose
    if rec.verdict not in ("urgent_referral", "not_indicated") and not _has_physical_therapy(
        b, draft_orders
    ):
        _comprehensive_care_card(b, rec)
    return dose


def order_hook(
    hook: Literal["order-select", "order-sign"],
    snap: Record,
    draft_orders: Any,
    kb: Knowledge,
    *,
    hook_instance: str,
    fhir: Fhir,
    selections: Sequence[str] | None = None,
    options: CdsOptions = NO_LINKS,
    policy: Policy = DEFAULT_POLICY,
) -> Evaluation:
    """Cards for TPI draft orders (no cards when no draft order is a TPI)."""
    ev = Evaluation(hook)
    chosen = selections if hook == "order-select" else None
    orders: list[TpiOrder] = tpi_orders(draft_orders, kb, fhir=fhir, selections=chosen)
    ev.orders = orders
    if not orders:
        return ev
    rec, all_regions, problems = run_engine(snap, kb, policy)
    b = Cards(hook, hook_instance, snap, kb, options, fhir, orders, all_regions)
    ev.recommendation, ev.cards = rec, b.cards
    if rec is None:
        no_assessment_card(b, problems)
    else:
        ev.dose = _order_cards(b, rec, draft_orders, kb, policy)
    return ev
