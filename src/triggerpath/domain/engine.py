"""The assessment engine: findings in, one explained ``Recommendation`` out.

Pure: no database, network, environment or clock. Time comes in as ``as_of``,
content as ``knowledge`` and clinic switches as ``policy``. The rules themselves
are data (``knowledge/data/pathway.yaml``); this module only evaluates them in
the order the pathway prescribes:

1. red flags            -> ``urgent_referral``
2. other pain generators -> ``not_indicated`` with a ``redirect``
3. trigger point criteria not met -> ``insufficient_findings``
4. absolute contraindication -> ``contraindicated``
5. screening incomplete (a needed finding is unanswered) -> ``insufficient_findings``
6. stepped care not yet tried -> ``conservative_care_first``
7. otherwise ``tpi_appropriate`` with the comprehensive plan.

Every finding is still reported whatever the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.recommendation import (
    CarePlanItem,
    Caution,
    ConflictNote,
    ExpectedCourse,
    Need,
    NextStep,
    Reason,
    Recommendation,
    SteppedCare,
    Verdict,
)
from triggerpath.knowledge.conditions import AllOf, Condition, evaluate
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.schema import CareStep, DurationPhase, RedirectCode, TextItem

DISCLAIMER = (
    "Decision support for qualified clinicians. It explains and cites; the decision and the "
    "procedure remain the treating clinician's."
)
INADEQUATE = frozenset({"none", "partial", "not_tolerated"})

HEADLINES: dict[Verdict, str] = {
    "urgent_referral": "Red flag present: urgent work-up before anything else; no TPI.",
    "not_indicated": "Pain is not primarily muscular: TPIs would not treat it; redirect.",
    "insufficient_findings": "Not enough findings to support a TPI yet.",
    "contraindicated": "A contraindication rules out TPIs now.",
    "conservative_care_first": "Myofascial pain, but stepped conservative care comes first.",
    "tpi_appropriate": "TPIs may be offered as part of comprehensive care.",
}


@dataclass
class _Screen:
    """What one screen found: reasons when positive, needs when unanswered."""

    positive: list[Reason] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)

    @property
    def unknown(self) -> bool:
        return bool(self.needs)


def _facts(a: Assessment, kb: Knowledge) -> dict[str, Any]:
    """Plain data the rules read, with two normalisations that are not guesses.

    - a male patient is not pregnant;
    - a medicine's class is looked up from its name when not given; stopped
      medicines are dropped (only active orders carry a bleeding risk).
    """
    facts: dict[str, Any] = a.model_dump(mode="json")
    if a.patient.sex == "male" and a.patient.pregnant is None:
        facts["patient"]["pregnant"] = False
    if a.medications is not None:
        facts["medications"] = [
            {
                **m.model_dump(mode="json"),
                "drug_class": m.drug_class or kb.medication_class_of(m.name),
            }
            for m in a.medications
            if m.active
        ]
    return facts


def _needs(unknown: list[str], why: str, *, blocking: bool = True) -> list[Need]:
    return [Need(field=f, why=why, blocking=blocking) for f in dict.fromkeys(unknown)]


def _screen(
    items: list[tuple[str, str, Condition, list[str], str]], facts: dict[str, Any], why: str
) -> _Screen:
    out = _Screen()
    for code, text, cond, sids, _ in items:
        ev = evaluate(cond, facts)
        if ev.value is True:
            out.positive.append(Reason(code=code, text=text, fields=ev.because, statement_ids=sids))
        elif ev.value is None:
            out.needs.extend(_needs(ev.unknown, why))
    return out


def _trigger_points(
    a: Assessment, kb: Knowledge
) -> tuple[bool | None, list[Reason], list[Need], list[str]]:
    """Apply the criteria to each examined point: (met?, reasons, needs, muscles met)."""
    tpc = kb.pathway.trigger_point_criteria
    sids = list(tpc.statement_ids)
    if not a.trigger_points:
        reason = Reason(
            code="no_trigger_point_examined",
            text="No trigger point has been recorded; TPIs need a palpated trigger point.",
            fields=["trigger_points"],
            statement_ids=sids,
        )
        return False, [reason], [], []
    parts: list[Condition] = (
        tpc.required.all_ if isinstance(tpc.required, AllOf) else [tpc.required]
    )
    met_muscles: list[str] = []
    reasons: list[Reason] = []
    needs: list[Need] = []
    any_unknown = False
    for i, tp in enumerate(a.trigger_points):
        prefix = f"trigger_points[{i}]."
        data = tp.model_dump(mode="json")
        ev = evaluate(tpc.required, data, prefix)
        name = kb.muscles[tp.muscle].name
        if ev.value is True:
            met_muscles.append(tp.muscle)
            confirm = [c for c in tpc.confirmatory if data.get(c) is True]
            extra = " with a local twitch response confirming it" if confirm else ""
            reasons.append(
                Reason(
                    code="trigger_point_criteria_met",
                    text=f"{name} ({tp.side}): taut band, hypersensitive spot and recognised or "
                    f"referred pain{extra}.",
                    fields=ev.because + [prefix + c for c in confirm],
                    statement_ids=sids,
                )
            )
            continue
        missing: list[str] = []
        for part in parts:
            sub = evaluate(part, data, prefix)
            if sub.value is False:
                missing.append(_describe(part))
        if ev.value is None:
            any_unknown = True
            needs.extend(_needs(ev.unknown, f"trigger point criteria for {name}"))
        if missing:
            reasons.append(
                Reason(
                    code="trigger_point_criteria_not_met",
                    text=f"{name} ({tp.side}): criteria not met; missing {', '.join(missing)}.",
                    fields=[prefix + "muscle"],
                    statement_ids=sids,
                )
            )
    if met_muscles:
        return True, [r for r in reasons if r.code == "trigger_point_criteria_met"], [], met_muscles
    return (None if any_unknown else False), reasons, needs, []


def _describe(cond: Condition) -> str:
    if isinstance(cond, str):
        return cond.replace("_", " ")
    from triggerpath.knowledge.conditions import AnyOf

    if isinstance(cond, AnyOf):
        return " or ".join(_describe(c) for c in cond.any_)
    return "a required finding"


def _phase(weeks: float | None, kb: Knowledge) -> DurationPhase | None:
    """The first phase (acute, subacute, chronic) whose bounds hold the duration."""
    if weeks is None:
        return None
    for ph in kb.pathway.duration_phases:
        below_max = (
            ph.max_weeks is None
            or weeks < ph.max_weeks
            or (ph.max_inclusive and weeks == ph.max_weeks)
        )
        if weeks >= ph.min_weeks and below_max:
            return ph
    return None


def _step(kb: Knowledge, stage: int) -> CareStep:
    return next(s for s in kb.pathway.care_steps if s.stage == stage)


def _stepped_care(  # noqa: C901, PLR0915  (KNOWN_LONG)
    a: Assessment, kb: Knowledge, policy: Policy
) -> tuple[SteppedCare, bool | None, list[Reason], list[Need], list[Caution]]:
    """Where the patient stands in stepped care and whether step 3 is reached."""
    stages = kb.modality_ids
    names = {m.id: m.name for s in kb.pathway.care_steps for m in s.modalities}
    needs: list[Need] = []
    cautions: list[Caution] = []
    care = a.conservative_care
    failed: dict[int, list[str]] = {1: [], 2: [], 3: []}
    helping: list[str] = []
    if care is None:
        needs.append(
            Need(field="conservative_care", why="stepped care already tried", blocking=True)
        )
        care = []
    for i, c in enumerate(care):
        stage = stages[c.modality]
        if c.response is None:
            needs.append(Need(field=f"conservative_care[{i}].response", why="response to care"))
            continue
        if c.response == "good":
            helping.append(c.modality)
            continue
        if c.weeks is None:
            needs.append(Need(field=f"conservative_care[{i}].weeks", why="length of the trial"))
            continue
        if c.response in INADEQUATE and (
            c.response == "not_tolerated" or c.weeks >= policy.min_conservative_trial_weeks
        ):
            failed[stage].append(c.modality)
    if failed[3]:
        cautions.append(
            Caution(
                code="prior_tpi_inadequate",
                text="Earlier TPIs gave little or no relief.",
                action="Work through the re-evaluation: diagnosis, technique, perpetuating factors "
                "(triggerpath course).",
                fields=["conservative_care"],
                statement_ids=["S000.31", "S004.05", "S003.12"],
            )
        )
    reached = 3 if failed[2] else 2 if failed[1] else 1
    eligible: bool | None = bool(failed[2])
    if not eligible and needs:
        eligible = None  # an unanswered trial could still show step 2 was tried
    current = _step(kb, reached)
    tried = [names[c.modality] for c in (a.conservative_care or [])]
    reasons: list[Reason] = []
    if reached == 3:
        nxt = _step(kb, 3)
        text = (
            "Step 2 care was tried without enough relief: TPIs may be added, and active care "
            "continues alongside."
        )
        reasons.append(
            Reason(
                code="conservative_care_tried",
                text=f"Conservative care tried without adequate response: "
                f"{', '.join(names[m] for m in failed[2] + failed[1])}.",
                fields=["conservative_care"],
                statement_ids=["S000.12", "S002.15", "S004.01", "S001.05"],
            )
        )
    else:
        nxt = _step(kb, reached if not failed[reached] else reached + 1)
        if helping:
            text = (
                f"Current care is helping ({', '.join(names[m] for m in helping)}): continue it; "
                "reassess in 2-4 weeks."
            )
        else:
            text = f"Next: {nxt.name.lower()} — {nxt.description}"
        reasons.append(
            Reason(
                code="stepped_care_not_completed",
                text=f"Stepped care has not reached step 3 (highest step completed: "
                f"{reached - 1 if reached > 1 else 0}). {text}",
                fields=["conservative_care"],
                statement_ids=["S003.10", "S000.27", "S001.11", "S001.05", "S000.12"],
            )
        )
    stepped = SteppedCare(
        stage=reached,
        stage_name=current.name,
        tried=tried,
        next_step=NextStep(
            stage=nxt.stage,
            name=nxt.name,
            text=text,
            modalities=[m.name for m in nxt.modalities],
            statement_ids=list(nxt.statement_ids),
        ),
    )
    return stepped, eligible, reasons, needs, cautions


def _items(items: list[TextItem]) -> list[CarePlanItem]:
    return [
        CarePlanItem(code=i.id, title=i.title, text=i.text, statement_ids=list(i.statement_ids))
        for i in items
    ]


def assess(  # noqa: C901, PLR0915  (KNOWN_LONG)
    assessment: Assessment,
    knowledge: Knowledge,
    *,
    as_of: date,
    policy: Policy = DEFAULT_POLICY,
) -> Recommendation:
    """Assess one patient's findings for trigger point injection.

    Pure and deterministic: the same inputs always give the same result.
    ``assessment`` must already be validated against ``knowledge`` (use
    :func:`triggerpath.domain.validation.parse_assessment`).
    """
    kb = knowledge
    p = kb.pathway
    facts = _facts(assessment, kb)
    regions = set(assessment.regions)

    red = _screen(
        [
            (
                f"red_flag.{r.id}",
                f"{r.name}: {r.description} {r.workup}",
                r.when,
                list(r.statement_ids),
                r.urgency,
            )
            for r in p.red_flags
        ],
        facts,
        "red flag screen",
    )
    gens = [g for g in p.pain_generators if regions & set(g.regions)]
    gen = _screen(
        [
            (
                f"pain_generator.{g.id}",
                f"{g.name}: {g.explanation} Work-up: {g.workup}",
                g.when,
                list(g.statement_ids),
                g.redirect,
            )
            for g in gens
        ],
        facts,
        "pain generator screen",
    )
    redirects: list[RedirectCode] = []
    for g in gens:
        if (
            any(r.code == f"pain_generator.{g.id}" for r in gen.positive)
            and g.redirect not in redirects
        ):
            redirects.append(g.redirect)

    tp_met, tp_reasons, tp_needs, muscles = _trigger_points(assessment, kb)

    absolute = [c for c in p.contraindications if c.severity == "absolute"]
    relative = [c for c in p.contraindications if c.severity == "relative"]
    abs_screen = _screen(
        [
            (
                f"contraindication.{c.id}",
                f"{c.name}: {c.explanation} {c.check}",
                c.when,
                list(c.statement_ids),
                "",
            )
            for c in absolute
        ],
        facts,
        "contraindication screen",
    )
    rel_screen = _screen(
        [
            (f"contraindication.{c.id}", c.explanation, c.when, list(c.statement_ids), "")
            for c in relative
        ],
        facts,
        "pre-procedure review (relative contraindications)",
    )
    cautions: list[Caution] = []
    for c in relative:
        for r in rel_screen.positive:
            if r.code == f"contraindication.{c.id}":
                cautions.append(
                    Caution(
                        code=c.id,
                        text=f"{c.name}: {c.explanation}",
                        action=c.check,
                        fields=r.fields,
                        statement_ids=r.statement_ids,
                    )
                )
    for rule in p.cautions:
        ev = evaluate(rule.when, facts)
        if ev.value is True:
            cautions.append(
                Caution(
                    code=rule.id,
                    text=rule.text,
                    action=rule.name,
                    fields=ev.because,
                    statement_ids=list(rule.statement_ids),
                )
            )
    for hazard_id in dict.fromkeys(h for m in muscles for h in kb.muscles[m].hazards):
        hz = kb.hazards[hazard_id]
        near = [
            kb.muscles[m].name for m in dict.fromkeys(muscles) if hazard_id in kb.muscles[m].hazards
        ]
        cautions.append(
            Caution(
                code=f"hazard.{hz.id}",
                text=f"{hz.name} ({', '.join(near)}): {hz.risk}",
                action=hz.precaution,
                fields=[
                    f"trigger_points[{i}].muscle"
                    for i, t in enumerate(assessment.trigger_points)
                    if hazard_id in kb.muscles[t.muscle].hazards
                ],
                statement_ids=list(hz.statement_ids) or ["S000.30"],
            )
        )

    supporting: list[Reason] = []
    for rule in p.supporting_indications:
        ev = evaluate(rule.when, facts)
        if ev.value is True:
            supporting.append(
                Reason(
                    code=f"supports.{rule.id}",
                    text=rule.text,
                    fields=ev.because,
                    statement_ids=list(rule.statement_ids),
                )
            )

    stepped, eligible, step_reasons, step_needs, step_cautions = _stepped_care(
        assessment, kb, policy
    )
    cautions.extend(step_cautions)

    blocking_needs = [
        *red.needs,
        *gen.needs,
        *tp_needs,
        *abs_screen.needs,
        *rel_screen.needs,
        *step_needs,
    ]
    phase = _phase(assessment.pain.duration_weeks, kb)
    extra_needs: list[Need] = []
    if phase is None:
        extra_needs.append(
            Need(
                field="pain.duration_weeks",
                why="acute/subacute/chronic phase and expected number of sessions",
                blocking=False,
            )
        )
    if assessment.patient.weight_kg is None:
        extra_needs.append(
            Need(
                field="patient.weight_kg",
                why="weight-based dose limits when planning",
                blocking=False,
            )
        )

    # ---- verdict, in the pathway's order of precedence
    reasons: list[Reason]
    redirect: RedirectCode | None = None
    verdict: Verdict
    if red.positive:
        verdict, reasons = "urgent_referral", red.positive
    elif gen.positive:
        verdict, reasons, redirect = "not_indicated", gen.positive, redirects[0]
    elif tp_met is False:
        verdict, reasons = "insufficient_findings", tp_reasons
    elif abs_screen.positive:
        verdict, reasons = "contraindicated", abs_screen.positive
    elif blocking_needs:
        verdict = "insufficient_findings"
        reasons = [
            Reason(
                code="screening_incomplete",
                text="Findings needed before a TPI can be supported are not recorded: "
                + ", ".join(dict.fromkeys(n.field for n in blocking_needs))
                + ".",
                fields=list(dict.fromkeys(n.field for n in blocking_needs)),
                statement_ids=_screen_ids(red, gen, tp_needs, abs_screen, rel_screen, step_needs),
            )
        ]
    elif not eligible:
        verdict, reasons = "conservative_care_first", step_reasons
    else:
        verdict = "tpi_appropriate"
        reasons = [
            *tp_reasons,
            *step_reasons,
            Reason(
                code="pain_primarily_muscular",
                text="No red flag, no other pain generator and no absolute contraindication found.",
                fields=["red_flags", "pain_generators", "contraindications"],
                statement_ids=["S000.11", "S002.16", "S002.12"],
            ),
            *supporting,
        ]

    used = {id(r) for r in reasons}
    findings = [
        r
        for r in [
            *red.positive,
            *gen.positive,
            *tp_reasons,
            *abs_screen.positive,
            *step_reasons,
            *supporting,
        ]
        if id(r) not in used
    ]
    needs = list({(n.field): n for n in [*blocking_needs, *extra_needs]}.values())

    ids_in_play = {s for r in [*reasons, *findings] for s in r.statement_ids}
    ids_in_play |= {s for c in cautions for s in c.statement_ids}
    care_ids = {s for i in p.comprehensive_care for s in i.statement_ids}
    conflicts = [
        ConflictNote(
            id=c.id,
            topic=c.topic,
            range=c.range,
            positions=[f"{pos.statement_id}: {pos.position}" for pos in c.positions],
            statement_ids=[pos.statement_id for pos in c.positions],
        )
        for c in kb.evidence.conflicts
        if verdict in ("tpi_appropriate", "conservative_care_first")
        or ({pos.statement_id for pos in c.positions} & (ids_in_play | care_ids))
    ]

    course = ExpectedCourse(
        phase=phase.id if phase else None,
        sessions_min=phase.sessions_min if phase else None,
        sessions_max=phase.sessions_max if phase else None,
        relief=p.expected_relief.text,
        statement_ids=[
            *(phase.statement_ids if phase else ["S000.20"]),
            *p.expected_relief.statement_ids,
        ],
    )
    essentials = _items(p.procedure_essentials) if verdict == "tpi_appropriate" else []
    return Recommendation(
        verdict=verdict,
        headline=HEADLINES[verdict],
        redirect=redirect,
        redirects=redirects,
        reasons=reasons,
        cautions=cautions,
        needs=needs,
        findings=findings,
        criteria=f"{p.trigger_point_criteria.name}: {p.trigger_point_criteria.description.strip()}",
        stepped_care=stepped,
        comprehensive_care=_items(p.comprehensive_care),
        pitfalls=_items(p.pitfalls),
        expected_course=course,
        evidence_notes=_items(p.evidence_notes),
        before_procedure=essentials,
        follow_up=_items(p.follow_up),
        conflicts=conflicts,
        knowledge_version=kb.version,
        as_of=as_of,
        disclaimer=DISCLAIMER,
    )


def _screen_ids(
    red: _Screen,
    gen: _Screen,
    tp_needs: list[Need],
    abs_s: _Screen,
    rel_s: _Screen,
    step_needs: list[Need],
) -> list[str]:
    ids: list[str] = []
    if red.unknown:
        ids.append("S002.12")
    if gen.unknown:
        ids += ["S000.11", "S002.11"]
    if tp_needs:
        ids += ["S000.09", "S002.10"]
    if abs_s.unknown:
        ids.append("S002.16")
    if rel_s.unknown:
        ids.append("S002.32")
    if step_needs:
        ids += ["S000.12", "S003.10"]
    return ids or ["S002.32"]
