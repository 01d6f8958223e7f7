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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.medications import medication_class
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import Reason
from triggerpath.domain.scoring import Score
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.conditions import evaluate
from triggerpath.knowledge.instruments import CheckItem, RfaRule
from triggerpath.knowledge.loader import Knowledge, load_knowledge

if TYPE_CHECKING:
    from triggerpath.domain.course import PlanSummary, Session


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MedialBranchBlock(_Out):
    """One diagnostic medial branch block and the relief it gave."""

    date: dt.date | None = None
    level: str | None = Field(default=None, max_length=100, description="e.g. 'L4-L5 right'")
    relief_pct: float = Field(ge=0, le=100, description="relief of the index pain, 0-100%")


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
    return CheckResult(
        id=item.id,
        title=item.title,
        check=item.check,
        status=status,
        finding=finding,
        fields=fields,
        statement_ids=list(item.statement_ids),
        references=list(item.references),
    )


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

    def qualifies(pct: float) -> bool:
        return pct >= rule.threshold_pct if rule.inclusive else pct > rule.threshold_pct

    assessed = [
        BlockAssessment(
            number=i + 1,
            relief_pct=b.relief_pct,
            qualifies=qualifies(b.relief_pct),
            date=b.date,
            level=b.level,
        )
        for i, b in enumerate(blocks)
    ]
    sign: Literal[">", "≥"] = "≥" if rule.inclusive else ">"
    need = f"{sign} {rule.threshold_pct:g}% relief"
    failing = [b for b in assessed if not b.qualifies]
    decision: Literal["supported", "not_supported", "needs_another_block", "no_blocks"]
    if not assessed:
        decision = "no_blocks"
        text = (
            f"No medial branch block recorded. The rule needs {rule.blocks_required} block"
            f"{'s' if rule.blocks_required > 1 else ''} each with {need}."
        )
    elif failing:
        decision = "not_supported"
        text = (
            "; ".join(
                f"block {b.number} gave {b.relief_pct:g}% relief, not {need}" for b in failing
            )
            + ": radiofrequency ablation is not supported by these blocks."
        )
    elif len(assessed) < rule.blocks_required:
        decision = "needs_another_block"
        text = (
            f"{len(assessed)} of the {rule.blocks_required} blocks this rule needs, each with "
            f"{need}: do a confirmatory block before radiofrequency ablation."
        )
    else:
        decision = "supported"
        relief = ", ".join(f"{b.relief_pct:g}%" for b in assessed)
        text = (
            f"{len(assessed)} block{'s' if len(assessed) > 1 else ''} with {need} each "
            f"({relief}): radiofrequency ablation is supported."
        )
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


# --------------------------------------------------------------------------- worksheet
def _facts(a: Assessment) -> dict[str, Any]:
    facts: dict[str, Any] = a.model_dump(mode="json")
    return facts


def _factor(item: CheckItem, facts: dict[str, Any]) -> CheckResult:
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
    return ", ".join(str(i + 1) for i in idx)


def _technical(
    item: CheckItem,
    a: Assessment,
    sessions: Sequence[Session],
    plan: PlanSummary | None,
    kb: Knowledge,
) -> CheckResult:
    status: CheckStatus = "to_check"
    finding = ""
    fields: list[str] = []
    if item.id == "localisation":
        no = [i for i, s in enumerate(sessions) if s.twitch_elicited is False]
        unknown = [i for i, s in enumerate(sessions) if s.twitch_elicited is None]
        if no:
            status = "flagged"
            finding = f"No local twitch response at session(s) {_numbers(no)}."
            fields = [f"sessions[{i}].twitch_elicited" for i in no]
        elif unknown:
            status = "not_recorded"
            finding = f"Twitch response not recorded for session(s) {_numbers(unknown)}."
            fields = [f"sessions[{i}].twitch_elicited" for i in unknown]
        else:
            status, finding = "acceptable", "A twitch response was recorded at every session."
    elif item.id == "guidance":
        plan_muscles = plan.injected_muscles() if plan else []
        hard: list[int] = []
        unknown_g: list[int] = []
        for i, s in enumerate(sessions):
            muscles = s.injected_muscles() or plan_muscles or [tp.muscle for tp in a.trigger_points]
            deep = [
                m
                for m in muscles
                if m in kb.muscles
                and (kb.muscles[m].depth == "deep" or kb.muscles[m].guidance != "palpation")
            ]
            guidance = s.guidance or (plan.guidance if plan else None)
            if deep and guidance == "palpation":
                hard.append(i)
            elif deep and guidance is None:
                unknown_g.append(i)
        if hard:
            status = "flagged"
            finding = (
                f"Deep or hazardous muscles injected by palpation alone at session(s) "
                f"{_numbers(hard)}: ultrasound improves accuracy."
            )
            fields = [f"sessions[{i}].guidance" for i in hard]
        elif unknown_g:
            status = "not_recorded"
            finding = f"Guidance not recorded for deep muscles at session(s) {_numbers(unknown_g)}."
            fields = [f"sessions[{i}].guidance" for i in unknown_g]
        else:
            status, finding = "acceptable", "No deep muscle was injected without guidance."
    elif item.id == "volume":
        s003 = kb.statements.get("S003.07")
        lo = s003.values.get("volume_ml_min", 0.5) if s003 else 0.5
        hi = s003.values.get("volume_ml_max", 1.0) if s003 else 1.0
        plan_volumes = plan.volumes() if plan else []
        plan_muscles = plan.injected_muscles() if plan else []
        low: list[int] = []
        high: list[int] = []
        unknown_v: list[int] = []
        for i, s in enumerate(sessions):
            volumes = s.volumes() or plan_volumes
            cards = [kb.muscles[m] for m in s.injected_muscles() or plan_muscles if m in kb.muscles]
            vmin = min([c.volume_ml_min for c in cards], default=lo)
            vmax = max([c.volume_ml_max for c in cards], default=hi)
            if not volumes:
                unknown_v.append(i)
            elif min(volumes) < vmin:
                low.append(i)
            elif max(volumes) > vmax:
                high.append(i)
        if low or high:
            status = "flagged"
            parts = []
            if low:
                parts.append(f"below the muscle's range at session(s) {_numbers(low)}")
            if high:
                parts.append(f"above the muscle's range at session(s) {_numbers(high)}")
            finding = f"Volume per point {' and '.join(parts)} (sources: {lo:g}-{hi:g} mL)."
            fields = [f"sessions[{i}].volume_ml_per_point" for i in low + high]
        elif unknown_v:
            status = "not_recorded"
            finding = f"Volume per point not recorded for session(s) {_numbers(unknown_v)}."
            fields = [f"sessions[{i}].volume_ml_per_point" for i in unknown_v]
        else:
            status, finding = "acceptable", f"Volumes within {lo:g}-{hi:g} mL per point."
    elif item.id == "injectate":
        used = list(dict.fromkeys(s.injectate for s in sessions if s.injectate))
        if not used and plan and plan.injectate:
            used = [plan.injectate]
        steroid = [i for i, s in enumerate(sessions) if s.corticosteroid]
        if used:
            finding = f"Injected: {', '.join(used)}."
            if steroid:
                finding += f" Corticosteroid added at session(s) {_numbers(steroid)}."
            status = "to_check"
        else:
            status, finding = "not_recorded", "Injectate not recorded."
            fields = [f"sessions[{i}].injectate" for i in range(len(sessions))]
    else:
        finding = "Check it."
    return _result(item, status, finding, fields)


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
    kb = knowledge
    rev = kb.instruments.reevaluation
    facts = _facts(assessment)
    regions = set(assessment.regions)

    technical = [_technical(c, assessment, sessions, plan, kb) for c in rev.technical_review]
    perpetuating: list[CheckResult] = []
    for c in rev.perpetuating_factors:
        result = _factor(c, facts)
        if c.id == "psychosocial" and startback is not None:
            status = {"high": "present", "medium": "to_check", "low": "absent"}[
                startback.band or "medium"
            ]
            result = result.model_copy(
                update={
                    "status": status,
                    "finding": f"STarT Back {startback.band_name} (psychosocial subscale "
                    f"{startback.subscales.get('psychosocial')}/5). {startback.matched_care}",
                    "fields": ["startback"],
                }
            )
        perpetuating.append(result)
    risks = [_factor(c, facts) for c in rev.failure_risk_factors]

    differential: list[DifferentialResult] = []
    for d in rev.differential:
        if d.regions and not regions & set(d.regions):
            continue
        d_status: DifferentialStatus
        d_fields: list[str] = []
        if d.when is None:
            d_status, finding = "to_check", "Not captured by the assessment form: examine for it."
        else:
            ev = evaluate(d.when, facts)
            if ev.value is True:
                d_status, d_fields = "suspected", ev.because
                finding = "Findings recorded at assessment point to it: work it up."
            elif ev.value is False:
                d_status = "not_suspected"
                finding = "Negative at assessment: re-examine now that TPIs have failed."
            else:
                d_status, d_fields = "not_examined", ev.unknown
                finding = "Not examined at assessment: examine for it."
        differential.append(
            DifferentialResult(
                id=d.id,
                name=d.name,
                features=d.features,
                status=d_status,
                finding=finding,
                fields=d_fields,
                workup=list(d.workup),
                treatment=d.treatment,
                statement_ids=list(d.statement_ids),
                references=list(d.references),
            )
        )

    active = [m for m in (assessment.medications or []) if m.active]
    present_risks = [r.title.lower() for r in risks if r.status == "present"]
    suspected = [d.name for d in differential if d.status == "suspected"]
    perpetuating_present = [p.id for p in perpetuating if p.status == "present"]
    alternatives: list[AlternativeResult] = []
    for alt in rev.alternatives:
        taking = [
            m.name
            for m in active
            if (m.drug_class or medication_class(m.name, kb)) in alt.medication_classes
        ]
        highlighted, why = True, "Part of the pathway after TPI failure."
        if alt.id == "occupational_therapy":
            highlighted = bool({"posture", "ergonomics"} & set(perpetuating_present))
            why = (
                "Posture or overload is recorded as a cause."
                if highlighted
                else "No postural or overload cause recorded; consider if work tasks play a part."
            )
        elif alt.id == "interdisciplinary_rehabilitation":
            highlighted = bool(present_risks)
            why = (
                f"Failure risk factors present: {', '.join(present_risks)}."
                if highlighted
                else "No failure risk factor recorded; consider for chronic or complex pain."
            )
        elif alt.id == "non_muscular_procedures":
            highlighted = bool(suspected)
            why = (
                f"Suspected at assessment: {', '.join(suspected)}."
                if highlighted
                else "Only once the work-up confirms a non-muscular source."
            )
        elif alt.id == "medication_change" and taking:
            why = "Review before adding: already taking " + ", ".join(taking) + "."
        alternatives.append(
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

    return Worksheet(
        title=rev.title,
        text=rev.text.strip(),
        opened_because=list(opened_because),
        technical_review=technical,
        perpetuating_factors=perpetuating,
        failure_risk_factors=risks,
        differential=differential,
        alternatives=alternatives,
        statement_ids=list(rev.statement_ids),
    )
