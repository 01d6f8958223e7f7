"""Safety cards shared by every hook: contraindications, bleeding risk, allergies, 24 h doses."""

from __future__ import annotations

from collections.abc import Sequence

from triggerpath.domain.recommendation import Caution, Reason, Recommendation
from triggerpath.services.cds._builder import Cards, CardText, SuggestionSpec, Why
from triggerpath.services.cds._model import (
    BLEEDING_CAUTIONS,
    OTHER_SAFETY_CAUTIONS,
    TraceEvidence,
    ids,
)
from triggerpath.services.cds._ports import Record
from triggerpath.services.cds._record import contraindications, evidence_for, recent_anesthetic


def _medication_evidence(snap: Record, drug_class: str) -> list[TraceEvidence]:
    """The active medications of a drug class, as card evidence."""
    return [
        TraceEvidence(
            m.reference,
            m.code or "text",
            m.name,
            m.valuesets[0] if m.valuesets else "name",
            m.authored,
        )
        for m in snap.active_medications
        if m.drug_class == drug_class
    ]


def _contraindication_card(b: Cards, rec: Recommendation, r: Reason, *, ordering: bool) -> None:
    """One card per contraindication: critical when a TPI is being ordered."""
    cid = r.code.removeprefix("contraindication.")
    item = next((c for c in b.kb.pathway.contraindications if c.id == cid), None)
    name = item.name if item else cid
    sugg: list[SuggestionSpec] = []
    if ordering:
        sugg.append(("Remove the TPI order", b.delete_orders(), True))
    text = CardText(
        f"contraindication-{cid}",
        name,
        f"{name}: TPI contraindicated" + (" — reconsider this order" if ordering else ""),
        "critical" if ordering else "warning",
        [f"**{name}.** {r.text}{ids(r.statement_ids)}"],
        r.statement_ids,
    )
    why = Why(r.code, rec.verdict, evidence_for(b.snap, r.fields), r.fields)
    b.add(text, why, sugg)


def _bleeding_card(b: Cards, rec: Recommendation, c: Caution) -> None:
    """An anticoagulant or antiplatelet on record, naming the drugs."""
    ev = _medication_evidence(b.snap, c.code)
    drugs = ", ".join(dict.fromkeys(e.display for e in ev)) or c.code
    kind = "Anticoagulant" if c.code == "anticoagulant" else "Antiplatelet"
    text = CardText(
        f"caution-{c.code}",
        c.text.split(":")[0],
        f"{kind} active ({drugs}): bleeding risk with TPIs",
        "warning",
        [f"{c.text}{ids(c.statement_ids)}", f"**Do:** {c.action}", *(f"- {e}" for e in ev)],
        c.statement_ids,
    )
    b.add(text, Why(f"caution.{c.code}", rec.verdict, ev, c.fields))


def _other_caution_card(b: Cards, rec: Recommendation, c: Caution) -> None:
    """Latex or preservative allergy: what to do instead."""
    title = c.text.split(":")[0]
    text = CardText(
        f"caution-{c.code}",
        title,
        f"{title}: {c.action}",
        "warning",
        [f"{c.text}{ids(c.statement_ids)}", f"**Do:** {c.action}"],
        c.statement_ids,
    )
    b.add(text, Why(f"caution.{c.code}", rec.verdict, evidence_for(b.snap, c.fields), c.fields))


def safety_cards(b: Cards, rec: Recommendation, *, ordering: bool) -> None:
    """Contraindication, bleeding-risk and allergy cards, in the engine's order."""
    for r in contraindications(rec):
        _contraindication_card(b, rec, r, ordering=ordering)
    for c in rec.cautions:
        if c.code in BLEEDING_CAUTIONS:
            _bleeding_card(b, rec, c)
        elif c.code in OTHER_SAFETY_CAUTIONS:
            _other_caution_card(b, rec, c)


def anesthetic_24h_card(b: Cards) -> None:
    """Local anesthetic in the last 24 h counts toward today's maximum dose."""
    given = recent_anesthetic(b.snap)
    if not given:
        return
    text = CardText(
        "local-anesthetic-24h",
        "Local anesthetic in the last 24 hours",
        "Local anesthetic given in the last 24 h: count it toward today's maximum dose",
        "warning",
        [
            "Local anesthetic doses add up over 24 hours; the 24-hour maximum applies to the total "
            f"(bupivacaine at most 400 mg in 24 h){ids(['S000.28'])}. Watch for systemic toxicity"
            f"{ids(['S000.29'])}.",
            *(f"- {g}" for g in given),
        ],
        ["S000.28", "S000.29"],
    )
    b.add(text, Why("local_anesthetic_24h", inputs=["MedicationAdministration", "Procedure"]))


def no_assessment_card(b: Cards, problems: Sequence[str]) -> None:
    """The record lacks what an assessment needs: say what, assess nothing."""
    text = CardText(
        "record-incomplete",
        "Record incomplete",
        "TriggerPath could not assess TPI eligibility: the record lacks required data",
        "info",
        ["The record does not give what an assessment needs:", *(f"- {p}" for p in problems)],
        ["S002.32"],
    )
    b.add(text, Why("assessment_input"))
