"""When TPIs fail: the re-evaluation worksheet and the radiofrequency ablation decision.

Pure: the worksheet is built from the episode's assessment and session records,
the knowledge base (``instruments.yaml: reevaluation``) and the clinic policy. It does
not decide for the clinician; it lays out, with the statement ids behind each line,

1. a technical review of the injections (localisation, guidance, volume, injectate; S004.02),
2. perpetuating factors (posture, ergonomics, joint instability, imbalance, stress; S004.03),
3. the risk factors that predict TPI failure (S004.04),
4. the differential diagnosis with the work-up for each (S000.31, S004.05, S004.06),
5. the alternative pathways (S004.07, S004.08, S004.09, S003.12).

:func:`ablation_decision` applies the clinic's medial branch block rule: by default the
source's *more than* 50% relief (S000.32; exactly 50% does not qualify), or the payer rule of
two blocks each with at least 80% relief (policy ``rfa_rule: dual_block_80``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.episode import MedialBranchBlock, PlanSummary, Session
from triggerpath.domain.medications import medication_class
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import Reason
from triggerpath.domain.scoring import Score
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.conditions import evaluate
from triggerpath.knowledge.instruments import (
    AblationRule,
    Alternative,
    CheckItem,
    Differential,
    RfaRule,
)
from triggerpath.knowledge.loader import Knowledge, load_knowledge


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- results
FactorStatus = Literal["present", "absent", "unknown", "to_check"]
CheckStatus = Literal["flagged", "acceptable", "not_recorded", "to_check"]
DifferentialStatus = Literal["suspected", "not_suspected", "not_examined", "to_check"]


class CheckResult(_Out):
    id: str
    title: str
    check: str
    status: CheckStatus | FactorStatus = Field(
        description="technical review: flagged | acceptable | not_recorded | to_check; "
        "factors: present | absent | unknown | to_check"
    )
    finding: str
    fields: list[str] = Field(default_factory=list)
    statement_ids: list[str] = Field(min_length=1)
    references: list[str] = Field(default_factory=list)


def _result(
    item: CheckItem, status: CheckStatus | FactorStatus, finding: str, fields: list[str]
) -> CheckResult:
    """A worksheet line: the knowledge item's text and sources with what the record shows."""
    text = item.model_dump(include={"id", "title", "check", "statement_ids", "references"})
    return CheckResult(**text, status=status, finding=finding, fields=fields)


class DifferentialResult(_Out):
    id: str
    name: str
    features: str
    status: DifferentialStatus
    finding: str
    fields: list[str] = Field(default_factory=list)
    workup: list[str]
    treatment: str
    statement_ids: list[str] = Field(min_length=1)
    references: list[str] = Field(default_factory=list)


class AlternativeResult(_Out):
    id: str
    name: str
    text: str
    highlighted: bool
    why: str
    already_taking: list[str] = Field(default_factory=list)
    statement_ids: list[str] = Field(min_length=1)


class BlockAssessment(_Out):
    number: int
    relief_pct: float
    qualifies: bool
    date: dt.date | None = None
    level: str | None = None


class AblationDecision(_Out):
    decision: Literal["supported", "not_supported", "needs_another_block", "no_blocks"]
    supported: bool
    rule: RfaRule
    rule_name: str
    threshold_pct: float
    comparison: Literal[">", "≥"]
    blocks_required: int
    blocks: list[BlockAssessment]
    text: str
    other_rule: str
    statement_ids: list[str] = Field(min_length=1)
    references: list[str] = Field(default_factory=list)


class Worksheet(_Out):
    title: str
    text: str
    opened_because: list[Reason] = Field(min_length=1)
    technical_review: list[CheckResult]
    perpetuating_factors: list[CheckResult]
    failure_risk_factors: list[CheckResult]
    differential: list[DifferentialResult]
    alternatives: list[AlternativeResult]
    statement_ids: list[str]


# --------------------------------------------------------------------------- ablation
Decision = Literal["supported", "not_supported", "needs_another_block", "no_blocks"]


def ablation_decision(
    mbb_results: Sequence[float | MedialBranchBlock],
    policy: Policy = DEFAULT_POLICY,
    *,
    knowledge: Knowledge | None = None,
) -> AblationDecision:
    """Whether medial branch block results support radiofrequency ablation under the policy.

    ``mbb_results`` are the relief percentages (or :class:`MedialBranchBlock` records) of the
    diagnostic blocks done, in order. Every block must meet the rule; a block that does not
    makes the decision ``not_supported``; too few qualifying blocks ``needs_another_block``.
    """
    kb = knowledge or load_knowledge()
    rule = kb.instruments.ablation_rule(policy.rfa_rule)
    other = next(r for r in kb.instruments.ablation_rules if r.id != rule.id)
    assessed = [
        BlockAssessment(
            number=i + 1,
            relief_pct=b.relief_pct,
            qualifies=_qualifies(rule, b.relief_pct),
            date=b.date,
            level=b.level,
        )
        for i, b in enumerate(_blocks(mbb_results))
    ]
    sign: Literal[">", "≥"] = "≥" if rule.inclusive else ">"
    decision, text = _decide(rule, assessed, f"{sign} {rule.threshold_pct:g}% relief")
    return AblationDecision(
        decision=decision,
        supported=decision == "supported",
        rule=rule.id,
        rule_name=rule.name,
        threshold_pct=rule.threshold_pct,
        comparison=sign,
        blocks_required=rule.blocks_required,
        blocks=assessed,
        text=f"{text} {rule.text}",
        other_rule=f"Other rule available as a clinic policy (rfa_rule: {other.id}): {other.text}",
        statement_ids=list(dict.fromkeys([*rule.statement_ids, *other.statement_ids])),
        references=[*rule.references, *other.references],
    )


def _blocks(mbb_results: Sequence[float | MedialBranchBlock]) -> list[MedialBranchBlock]:
    """Blocks from records or bare percentages; every bad percentage named, or none kept."""
    blocks: list[MedialBranchBlock] = []
    problems: list[FieldProblem] = []
    for i, r in enumerate(mbb_results):
        if isinstance(r, MedialBranchBlock):
            blocks.append(r)
        elif isinstance(r, bool) or not isinstance(r, int | float) or not 0 <= r <= 100:
            problems.append(
                FieldProblem(f"medial_branch_blocks[{i}].relief_pct", f"{r!r} is not a % 0-100")
            )
        else:
            blocks.append(MedialBranchBlock(relief_pct=float(r)))
    if problems:
        raise InvalidInput(problems)
    return blocks


def _qualifies(rule: AblationRule, pct: float) -> bool:
    """``>`` the threshold for the source's rule, ``>=`` for an inclusive (payer) rule."""
    return pct >= rule.threshold_pct if rule.inclusive else pct > rule.threshold_pct


def _decide(
    rule: AblationRule, assessed: Sequence[BlockAssessment], need: str
) -> tuple[Decision, str]:
    """No blocks, a failing block, too few blocks, or enough qualifying blocks."""
    failing = [b for b in assessed if not b.qualifies]
    if not assessed:
        return "no_blocks", (
            f"No medial branch block recorded. The rule needs {rule.blocks_required} block"
            f"{'s' if rule.blocks_required > 1 else ''} each with {need}."
        )
    if failing:
        return "not_supported", (
            "; ".join(
                f"block {b.number} gave {b.relief_pct:g}% relief, not {need}" for b in failing
            )
            + ": radiofrequency ablation is not supported by these blocks."
        )
    if len(assessed) < rule.blocks_required:
        return "needs_another_block", (
            f"{len(assessed)} of the {rule.blocks_required} blocks this rule needs, each with "
            f"{need}: do a confirmatory block before radiofrequency ablation."
        )
    relief = ", ".join(f"{b.relief_pct:g}%" for b in assessed)
    return "supported", (
        f"{len(assessed)} block{'s' if len(assessed) > 1 else ''} with {need} each "
        f"({relief}): radiofrequency ablation is supported."
    )


# --------------------------------------------------------------------------- worksheet
def _facts(a: Assessment) -> dict[str, Any]:
    """The assessment as the JSON the knowledge conditions are evaluated on."""
    facts: dict[str, Any] = a.model_dump(mode="json")
    return facts


def _factor(item: CheckItem, facts: dict[str, Any]) -> CheckResult:
    """A factor the assessment can show: present, absent, unknown, or to check by hand."""
    if item.when is None:
        status: FactorStatus = "to_check"
        finding = "Not captured by the assessment form: check it."
        fields: list[str] = []
    else:
        ev = evaluate(item.when, facts)
        if ev.value is True:
            status, finding, fields = "present", "Recorded in the assessment.", ev.because
        elif ev.value is False:
            status, finding, fields = "absent", "Not recorded as present in the assessment.", []
        else:
            status, finding, fields = "unknown", "Not recorded: check it.", ev.unknown
    return _result(item, status, finding, fields)


def _numbers(idx: Sequence[int]) -> str:
    """Session indexes as the 1-based numbers a clinician reads."""
    return ", ".join(str(i + 1) for i in idx)


@dataclass(frozen=True)
class _Record:
    """What the technical review reads: the sessions, the plan and the assessment."""

    assessment: Assessment
    sessions: Sequence[Session]
    plan: PlanSummary | None
    kb: Knowledge

    def muscles(self, s: Session) -> list[str]:
        """The session's muscles, else the plan's."""
        return s.injected_muscles() or (self.plan.injected_muscles() if self.plan else [])


Check = tuple[CheckStatus, str, list[str]]


def _technical(item: CheckItem, record: _Record) -> CheckResult:
    """One technical review line (S004.02), by the knowledge item's id."""
    review = _TECHNICAL.get(item.id)
    status, finding, fields = review(record) if review else ("to_check", "Check it.", [])
    return _result(item, status, finding, fields)


def _localisation(r: _Record) -> Check:
    """A local twitch response shows the needle found the trigger point."""
    no = [i for i, s in enumerate(r.sessions) if s.twitch_elicited is False]
    unknown = [i for i, s in enumerate(r.sessions) if s.twitch_elicited is None]
    return _per_session(
        "twitch_elicited",
        (no, f"No local twitch response at session(s) {_numbers(no)}."),
        (unknown, f"Twitch response not recorded for session(s) {_numbers(unknown)}."),
        "A twitch response was recorded at every session.",
    )


def _per_session(
    field: str,
    flagged: tuple[Sequence[int], str],
    missing: tuple[Sequence[int], str],
    acceptable: str,
) -> Check:
    """Flagged sessions first, then those where it was not recorded, else acceptable."""
    found: tuple[tuple[CheckStatus, tuple[Sequence[int], str]], ...] = (
        ("flagged", flagged),
        ("not_recorded", missing),
    )
    for status, (sessions, text) in found:
        if sessions:
            return status, text, [f"sessions[{i}].{field}" for i in sessions]
    return "acceptable", acceptable, []


def _guidance(r: _Record) -> Check:
    """Deep or hazardous muscles want image guidance, not palpation alone."""
    kb = r.kb
    hard: list[int] = []
    unknown: list[int] = []
    for i, s in enumerate(r.sessions):
        muscles = r.muscles(s) or [tp.muscle for tp in r.assessment.trigger_points]
        deep = [
            m
            for m in muscles
            if m in kb.muscles
            and (kb.muscles[m].depth == "deep" or kb.muscles[m].guidance != "palpation")
        ]
        guidance = s.guidance or (r.plan.guidance if r.plan else None)
        if deep and guidance == "palpation":
            hard.append(i)
        elif deep and guidance is None:
            unknown.append(i)
    return _per_session(
        "guidance",
        (
            hard,
            f"Deep or hazardous muscles injected by palpation alone at session(s) "
            f"{_numbers(hard)}: ultrasound improves accuracy.",
        ),
        (unknown, f"Guidance not recorded for deep muscles at session(s) {_numbers(unknown)}."),
        "No deep muscle was injected without guidance.",
    )


def _volume(r: _Record) -> Check:
    """Volume per point within the injected muscles' ranges (S003.07 when none is known)."""
    s003 = r.kb.statements.get("S003.07")
    lo = s003.values.get("volume_ml_min", 0.5) if s003 else 0.5
    hi = s003.values.get("volume_ml_max", 1.0) if s003 else 1.0
    low, high, unknown = _volumes_out_of_range(r, lo, hi)
    parts = [
        f"{where} the muscle's range at session(s) {_numbers(idx)}"
        for where, idx in (("below", low), ("above", high))
        if idx
    ]
    return _per_session(
        "volume_ml_per_point",
        (low + high, f"Volume per point {' and '.join(parts)} (sources: {lo:g}-{hi:g} mL)."),
        (unknown, f"Volume per point not recorded for session(s) {_numbers(unknown)}."),
        f"Volumes within {lo:g}-{hi:g} mL per point.",
    )


def _volumes_out_of_range(
    r: _Record, lo: float, hi: float
) -> tuple[list[int], list[int], list[int]]:
    """Sessions below, above, and without a recorded volume."""
    plan_volumes = r.plan.volumes() if r.plan else []
    low: list[int] = []
    high: list[int] = []
    unknown: list[int] = []
    for i, s in enumerate(r.sessions):
        volumes = s.volumes() or plan_volumes
        cards = [r.kb.muscles[m] for m in r.muscles(s) if m in r.kb.muscles]
        vmin = min([c.volume_ml_min for c in cards], default=lo)
        vmax = max([c.volume_ml_max for c in cards], default=hi)
        if not volumes:
            unknown.append(i)
        elif min(volumes) < vmin:
            low.append(i)
        elif max(volumes) > vmax:
            high.append(i)
    return low, high, unknown


def _injectate(r: _Record) -> Check:
    """What was injected, and any corticosteroid added: for the clinician to review."""
    used = list(dict.fromkeys(s.injectate for s in r.sessions if s.injectate))
    if not used and r.plan and r.plan.injectate:
        used = [r.plan.injectate]
    if not used:
        return (
            "not_recorded",
            "Injectate not recorded.",
            [f"sessions[{i}].injectate" for i in range(len(r.sessions))],
        )
    steroid = [i for i, s in enumerate(r.sessions) if s.corticosteroid]
    finding = f"Injected: {', '.join(used)}."
    if steroid:
        finding += f" Corticosteroid added at session(s) {_numbers(steroid)}."
    return "to_check", finding, []


_TECHNICAL: dict[str, Callable[[_Record], Check]] = {
    "localisation": _localisation,
    "guidance": _guidance,
    "volume": _volume,
    "injectate": _injectate,
}


def build_worksheet(
    assessment: Assessment,
    sessions: Sequence[Session],
    knowledge: Knowledge,
    *,
    opened_because: Sequence[Reason],
    plan: PlanSummary | None = None,
    startback: Score | None = None,
) -> Worksheet:
    """Lay out the re-evaluation for a course in which TPIs are failing."""
    rev = knowledge.instruments.reevaluation
    facts = _facts(assessment)
    record = _Record(assessment, sessions, plan, knowledge)
    perpetuating = [_perpetuating(c, facts, startback) for c in rev.perpetuating_factors]
    risks = [_factor(c, facts) for c in rev.failure_risk_factors]
    differential = _differential(rev.differential, set(assessment.regions), facts)
    return Worksheet(
        title=rev.title,
        text=rev.text.strip(),
        opened_because=list(opened_because),
        technical_review=[_technical(c, record) for c in rev.technical_review],
        perpetuating_factors=perpetuating,
        failure_risk_factors=risks,
        differential=differential,
        alternatives=_alternatives(
            rev.alternatives, assessment, knowledge, perpetuating, risks, differential
        ),
        statement_ids=list(rev.statement_ids),
    )


def _perpetuating(item: CheckItem, facts: dict[str, Any], startback: Score | None) -> CheckResult:
    """A perpetuating factor (S004.03); STarT Back, when scored, decides the psychosocial one."""
    result = _factor(item, facts)
    if item.id != "psychosocial" or startback is None:
        return result
    status = {"high": "present", "medium": "to_check", "low": "absent"}[startback.band or "medium"]
    return result.model_copy(
        update={
            "status": status,
            "finding": f"STarT Back {startback.band_name} (psychosocial subscale "
            f"{startback.subscales.get('psychosocial')}/5). {startback.matched_care}",
            "fields": ["startback"],
        }
    )


def _differential(
    items: Sequence[Differential], regions: set[str], facts: dict[str, Any]
) -> list[DifferentialResult]:
    """The differential for the painful regions (S000.31, S004.05, S004.06), with work-up."""
    return [_diagnosis(d, facts) for d in items if not (d.regions and not regions & set(d.regions))]


def _diagnosis(d: Differential, facts: dict[str, Any]) -> DifferentialResult:
    """Suspected, not suspected or not examined, from the assessment's findings."""
    status: DifferentialStatus
    fields: list[str] = []
    if d.when is None:
        status, finding = "to_check", "Not captured by the assessment form: examine for it."
    else:
        ev = evaluate(d.when, facts)
        if ev.value is True:
            status, fields = "suspected", ev.because
            finding = "Findings recorded at assessment point to it: work it up."
        elif ev.value is False:
            status = "not_suspected"
            finding = "Negative at assessment: re-examine now that TPIs have failed."
        else:
            status, fields = "not_examined", ev.unknown
            finding = "Not examined at assessment: examine for it."
    text = d.model_dump(
        include={"id", "name", "features", "workup", "treatment", "statement_ids", "references"}
    )
    return DifferentialResult(**text, status=status, finding=finding, fields=fields)


def _alternatives(
    items: Sequence[Alternative],
    assessment: Assessment,
    kb: Knowledge,
    perpetuating: Sequence[CheckResult],
    risks: Sequence[CheckResult],
    differential: Sequence[DifferentialResult],
) -> list[AlternativeResult]:
    """The pathways after TPI failure (S004.07-09, S003.12), highlighted by what was found."""
    found = _Found(
        perpetuating={p.id for p in perpetuating if p.status == "present"},
        risks=[r.title.lower() for r in risks if r.status == "present"],
        suspected=[d.name for d in differential if d.status == "suspected"],
    )
    active = [m for m in (assessment.medications or []) if m.active]
    results: list[AlternativeResult] = []
    for alt in items:
        taking = [
            m.name
            for m in active
            if (m.drug_class or medication_class(m.name, kb)) in alt.medication_classes
        ]
        highlighted, why = _highlight(alt.id, found, taking)
        results.append(
            AlternativeResult(
                id=alt.id,
                name=alt.name,
                text=alt.text,
                highlighted=highlighted,
                why=why,
                already_taking=taking,
                statement_ids=list(alt.statement_ids),
            )
        )
    return results


@dataclass(frozen=True)
class _Found:
    """What the worksheet found, for highlighting the alternatives."""

    perpetuating: set[str]
    risks: list[str]
    suspected: list[str]


def _highlight(alt_id: str, found: _Found, taking: Sequence[str]) -> tuple[bool, str]:
    """Whether to highlight an alternative pathway, and why."""
    if alt_id == "occupational_therapy":
        if {"posture", "ergonomics"} & found.perpetuating:
            return True, "Posture or overload is recorded as a cause."
        return False, "No postural or overload cause recorded; consider if work tasks play a part."
    if alt_id == "interdisciplinary_rehabilitation":
        if found.risks:
            return True, f"Failure risk factors present: {', '.join(found.risks)}."
        return False, "No failure risk factor recorded; consider for chronic or complex pain."
    if alt_id == "non_muscular_procedures":
        if found.suspected:
            return True, f"Suspected at assessment: {', '.join(found.suspected)}."
        return False, "Only once the work-up confirms a non-muscular source."
    if alt_id == "medication_change" and taking:
        return True, "Review before adding: already taking " + ", ".join(taking) + "."
    return True, "Part of the pathway after TPI failure."


__all__ = [
    "AblationDecision",
    "AlternativeResult",
    "BlockAssessment",
    "CheckResult",
    "DifferentialResult",
    "MedialBranchBlock",
    "Worksheet",
    "ablation_decision",
    "build_worksheet",
]
