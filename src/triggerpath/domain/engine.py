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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from triggerpath.domain.assessment import Assessment, Medication
from triggerpath.domain.medications import BLEEDING_CLASSES, recognise
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
from triggerpath.knowledge.schema import (
    CareStep,
    CautionRule,
    DurationPhase,
    Hazard,
    PainGenerator,
    RedirectCode,
    TextItem,
)

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
    - each active medicine counts under every class it belongs to: the RxNorm code
      when the value sets hold it, else the recorded class together with every class
      its name is recognised as (:mod:`triggerpath.domain.medications`), so a
      mis-classed anticoagulant still counts; stopped medicines are dropped (only
      active orders carry a bleeding risk).
    """
    facts: dict[str, Any] = a.model_dump(mode="json")
    if a.patient.sex == "male" and a.patient.pregnant is None:
        facts["patient"]["pregnant"] = False
    if a.medications is not None:
        facts["medications"] = [
            {**m.model_dump(mode="json"), "drug_class": cls}
            for m in a.medications
            if m.active
            for cls in _classes(m, kb) or (None,)
        ]
    return facts


def _classes(m: Medication, kb: Knowledge) -> tuple[str, ...]:
    """Every class one medication entry counts under (code first, then class and name)."""
    found = recognise(m.name, kb, rxnorm=m.rxnorm)
    if found.matched_by == "code":
        return found.classes
    explicit = (m.drug_class,) if m.drug_class else ()
    return tuple(dict.fromkeys([*explicit, *found.classes]))


def _medication_review(a: Assessment, kb: Knowledge) -> tuple[list[Need], list[Caution]]:
    """Active medicines not recognised, or recorded under a class their name contradicts.

    An unrecognised active medicine is never taken as harmless: it becomes a need and a
    caution (a plan then waits for its acknowledgement).
    """
    needs: list[Need] = []
    unknown: list[tuple[int, str]] = []
    for i, m in enumerate(a.medications or []):
        if not m.active:
            continue
        found = recognise(m.name, kb, rxnorm=m.rxnorm)
        if not found.recognised and m.drug_class is None:
            unknown.append((i, m.name))
            needs.append(
                Need(
                    field=f"medications[{i}].name",
                    why=f"confirm whether {m.name!r} is an anticoagulant or antiplatelet "
                    "(the name is not recognised; record its drug_class or RxNorm code)",
                    blocking=False,
                )
            )
        elif (
            m.drug_class
            and found.drug_class in BLEEDING_CLASSES
            and found.drug_class != m.drug_class
        ):
            needs.append(
                Need(
                    field=f"medications[{i}].drug_class",
                    why=f"{m.name!r} is recorded as {m.drug_class} but is recognised as "
                    f"{found.drug_class}; it counts as {found.drug_class} until corrected",
                    blocking=False,
                )
            )
    return needs, _unrecognised_caution(unknown)


def _unrecognised_caution(unknown: list[tuple[int, str]]) -> list[Caution]:
    """One caution naming every active medicine whose class is not known."""
    if not unknown:
        return []
    names = ", ".join(repr(n) for _, n in unknown)
    return [
        Caution(
            code="medication_unrecognised",
            text=f"Active medication not recognised: {names}. It may be an anticoagulant "
            "or antiplatelet.",
            action="Confirm with the patient, the record or the prescriber whether each is an "
            "anticoagulant or antiplatelet before needling; record its class or RxNorm code.",
            fields=[f"medications[{i}].name" for i, _ in unknown],
            statement_ids=["S002.32", "S002.30"],
        )
    ]


def _needs(unknown: list[str], why: str, *, blocking: bool = True) -> list[Need]:
    """One need per unanswered field (each field once)."""
    return [Need(field=f, why=why, blocking=blocking) for f in dict.fromkeys(unknown)]


def _screen(
    items: Sequence[tuple[str, str, Condition, list[str], str]], facts: dict[str, Any], why: str
) -> _Screen:
    """Evaluate each rule: positives become reasons, unanswered fields become needs."""
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
    """A criterion in words, for the 'missing ...' text."""
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
    """The care step of that stage (1, 2 or 3)."""
    return next(s for s in kb.pathway.care_steps if s.stage == stage)


@dataclass
class _Trials:
    """The conservative-care trials sorted by outcome."""

    failed: dict[int, list[str]]
    helping: list[str]
    needs: list[Need]


def _care_trials(a: Assessment, kb: Knowledge, policy: Policy) -> _Trials:
    """Sort each recorded trial: failed (by stage), helping, or unanswered (a need)."""
    stages = kb.modality_ids
    out = _Trials({1: [], 2: [], 3: []}, [], [])
    if a.conservative_care is None:
        out.needs.append(
            Need(field="conservative_care", why="stepped care already tried", blocking=True)
        )
    for i, c in enumerate(a.conservative_care or []):
        if c.response is None:
            out.needs.append(Need(field=f"conservative_care[{i}].response", why="response to care"))
        elif c.response == "good":
            out.helping.append(c.modality)
        elif c.weeks is None:
            out.needs.append(Need(field=f"conservative_care[{i}].weeks", why="length of the trial"))
        elif c.response in INADEQUATE and (
            c.response == "not_tolerated" or c.weeks >= policy.min_conservative_trial_weeks
        ):
            out.failed[stages[c.modality]].append(c.modality)
    return out


def _prior_tpi_caution(trials: _Trials) -> list[Caution]:
    """A caution when earlier TPIs (step 3) gave little or no relief."""
    if not trials.failed[3]:
        return []
    return [
        Caution(
            code="prior_tpi_inadequate",
            text="Earlier TPIs gave little or no relief.",
            action="Work through the re-evaluation: diagnosis, technique, perpetuating factors "
            "(triggerpath course).",
            fields=["conservative_care"],
            statement_ids=["S000.31", "S004.05", "S003.12"],
        )
    ]


def _step_three_reached(trials: _Trials, names: dict[str, str]) -> tuple[str, Reason]:
    """Step 2 failed: the next-step text and the reason that TPIs may be added."""
    text = (
        "Step 2 care was tried without enough relief: TPIs may be added, and active care "
        "continues alongside."
    )
    reason = Reason(
        code="conservative_care_tried",
        text=f"Conservative care tried without adequate response: "
        f"{', '.join(names[m] for m in trials.failed[2] + trials.failed[1])}.",
        fields=["conservative_care"],
        statement_ids=["S000.12", "S002.15", "S004.01", "S001.05"],
    )
    return text, reason


def _step_not_reached(
    trials: _Trials, reached: int, nxt: CareStep, names: dict[str, str]
) -> tuple[str, Reason]:
    """Step 3 not reached: what to do next (continue what helps, or the next step)."""
    if trials.helping:
        text = (
            f"Current care is helping ({', '.join(names[m] for m in trials.helping)}): "
            "continue it; reassess in 2-4 weeks."
        )
    else:
        text = f"Next: {nxt.name.lower()} — {nxt.description}"
    reason = Reason(
        code="stepped_care_not_completed",
        text=f"Stepped care has not reached step 3 (highest step completed: "
        f"{reached - 1 if reached > 1 else 0}). {text}",
        fields=["conservative_care"],
        statement_ids=["S003.10", "S000.27", "S001.11", "S001.05", "S000.12"],
    )
    return text, reason


def _stepped_care(
    a: Assessment, kb: Knowledge, policy: Policy
) -> tuple[SteppedCare, bool | None, list[Reason], list[Need], list[Caution]]:
    """Where the patient stands in stepped care and whether step 3 is reached."""
    names = {m.id: m.name for s in kb.pathway.care_steps for m in s.modalities}
    trials = _care_trials(a, kb, policy)
    failed = trials.failed
    reached = 3 if failed[2] else 2 if failed[1] else 1
    eligible: bool | None = bool(failed[2])
    if not eligible and trials.needs:
        eligible = None  # an unanswered trial could still show step 2 was tried
    if reached == 3:
        nxt = _step(kb, 3)
        text, reason = _step_three_reached(trials, names)
    else:
        nxt = _step(kb, reached if not failed[reached] else reached + 1)
        text, reason = _step_not_reached(trials, reached, nxt, names)
    stepped = SteppedCare(
        stage=reached,
        stage_name=_step(kb, reached).name,
        tried=[names[c.modality] for c in (a.conservative_care or [])],
        next_step=NextStep(
            stage=nxt.stage,
            name=nxt.name,
            text=text,
            modalities=[m.name for m in nxt.modalities],
            statement_ids=list(nxt.statement_ids),
        ),
    )
    return stepped, eligible, [reason], trials.needs, _prior_tpi_caution(trials)


def _items(items: list[TextItem]) -> list[CarePlanItem]:
    """Knowledge text items as plan items."""
    return [
        CarePlanItem(code=i.id, title=i.title, text=i.text, statement_ids=list(i.statement_ids))
        for i in items
    ]


@dataclass
class _Screens:
    """The four rule screens of one assessment, with the redirects the positives imply."""

    red: _Screen
    gen: _Screen
    absolute: _Screen
    relative: _Screen
    redirects: list[RedirectCode]
    region_needs: list[Need]
    checks: list[Need]
    medication_needs: list[Need]
    check_cautions: list[Caution]
    medication_cautions: list[Caution]


@dataclass
class _TriggerPoints:
    """Outcome of the trigger point criteria over every examined point."""

    met: bool | None
    reasons: list[Reason]
    needs: list[Need]
    muscles: list[str]


def _red_flag_screen(facts: dict[str, Any], kb: Knowledge) -> _Screen:
    """Step 1: every red flag rule on the recorded facts."""
    items = [
        (
            f"red_flag.{r.id}",
            f"{r.name}: {r.description} {r.workup}",
            r.when,
            list(r.statement_ids),
            r.urgency,
        )
        for r in kb.pathway.red_flags
    ]
    return _screen(items, facts, "red flag screen")


def _generator_item(g: PainGenerator) -> tuple[str, str, Condition, list[str], str]:
    """One pain generator as a screen rule."""
    return (
        f"pain_generator.{g.id}",
        f"{g.name}: {g.explanation} Work-up: {g.workup}",
        g.when,
        list(g.statement_ids),
        g.redirect,
    )


def _outside_regions(
    facts: dict[str, Any], regions: set[str], seen: set[str], kb: Knowledge
) -> tuple[list[tuple[PainGenerator, Reason]], list[Need]]:
    """Positive generators of regions not listed: never dropped, the region to confirm.

    Regions decide which screens must be *answered*; a positive finding counts wherever
    it is recorded (an unanswered field of another region's screen is not a need).
    """
    hits: list[tuple[PainGenerator, Reason]] = []
    needs: list[Need] = []
    seen = set(seen)  # the caller's set stays as it was
    listed = ", ".join(sorted(regions))
    for g in kb.pathway.pain_generators:
        if regions & set(g.regions):
            continue
        ev = evaluate(g.when, facts)
        if ev.value is not True or set(ev.because) <= seen:
            continue
        seen |= set(ev.because)
        fits = ", ".join(g.regions)
        text = (
            f"{g.name}: {g.explanation} Recorded although the listed regions ({listed}) are "
            f"not where this screen applies ({fits}): it is worked up before any TPI, and the "
            f"painful regions need confirming. Work-up: {g.workup}"
        )
        sids = list(dict.fromkeys([*g.statement_ids, "S002.11"]))
        hits.append(
            (
                g,
                Reason(
                    code=f"pain_generator.{g.id}", text=text, fields=ev.because, statement_ids=sids
                ),
            )
        )
        needs.append(
            Need(
                field="regions",
                why=f"confirm the painful regions: {g.name.lower()} is recorded ({fits}) but "
                f"the listed regions are {listed}",
            )
        )
    return hits, needs


def _generator_screen(
    facts: dict[str, Any], regions: set[str], kb: Knowledge
) -> tuple[_Screen, list[RedirectCode], list[Need]]:
    """Step 2: other pain generators, every positive counted, and their redirects.

    The listed regions' generators first (their unanswered fields are needs), then any
    positive generator of another region (with a need to confirm the regions).
    """
    gens = [g for g in kb.pathway.pain_generators if regions & set(g.regions)]
    gen = _screen([_generator_item(g) for g in gens], facts, "pain generator screen")
    seen = {f for r in gen.positive for f in r.fields}
    outside, region_needs = _outside_regions(facts, regions, seen, kb)
    gen.positive += [r for _, r in outside]
    positive = {r.code for r in gen.positive}
    redirects: list[RedirectCode] = []
    for g in [*gens, *(g for g, _ in outside)]:
        if f"pain_generator.{g.id}" in positive and g.redirect not in redirects:
            redirects.append(g.redirect)
    return gen, redirects, region_needs[:1]


def _contraindication_screens(facts: dict[str, Any], kb: Knowledge) -> tuple[_Screen, _Screen]:
    """Step 4 (and the pre-procedure review): absolute and relative contraindications."""
    cis = kb.pathway.contraindications
    absolute = _screen(
        [
            (
                f"contraindication.{c.id}",
                f"{c.name}: {c.explanation} {c.check}",
                c.when,
                list(c.statement_ids),
                "",
            )
            for c in cis
            if c.severity == "absolute"
        ],
        facts,
        "contraindication screen",
    )
    relative = _screen(
        [
            (f"contraindication.{c.id}", c.explanation, c.when, list(c.statement_ids), "")
            for c in cis
            if c.severity == "relative"
        ],
        facts,
        "pre-procedure review (relative contraindications)",
    )
    return absolute, relative


def _care_longer_than_pain(a: Assessment) -> list[Need]:
    """A conservative-care trial longer than the pain has lasted (one of them is wrong)."""
    weeks = a.pain.duration_weeks
    if weeks is None:
        return []
    return [
        Need(
            field=f"conservative_care[{i}].weeks",
            why=f"the trial ({c.weeks:g} weeks) is longer than the pain has lasted "
            f"(pain.duration_weeks {weeks:g}): correct the trial or the duration",
        )
        for i, c in enumerate(a.conservative_care or [])
        if c.weeks is not None and c.weeks > weeks
    ]


def _muscles_outside_regions(a: Assessment, kb: Knowledge) -> list[Need]:
    """A trigger point in a muscle of no listed region: the regions decide the screens run."""
    listed = set(a.regions)
    out: list[Need] = []
    for i, tp in enumerate(a.trigger_points):
        m = kb.muscles[tp.muscle]
        if not listed & set(m.regions):
            out.append(
                Need(
                    field=f"trigger_points[{i}].muscle",
                    why=f"{m.name} lies in {', '.join(m.regions)}, not in the listed regions "
                    f"({', '.join(a.regions)}): confirm the regions so the right screens run",
                )
            )
    return out


def _consistency(a: Assessment, kb: Knowledge) -> tuple[list[Need], list[Caution]]:
    """Contradictions in the record: blocking needs, and a caution for no pain now."""
    needs = [*_care_longer_than_pain(a), *_muscles_outside_regions(a, kb)]
    cautions: list[Caution] = []
    if a.pain.nrs == 0:
        cautions.append(
            Caution(
                code="no_pain_now",
                text="Pain is rated 0/10 at this assessment.",
                action="Confirm the rating and that the trigger points still reproduce the "
                "patient's pain before injecting; an injection treats pain, not a finding alone.",
                fields=["pain.nrs"],
                statement_ids=["S002.10", "S000.09"],
            )
        )
    return needs, cautions


def _screens(a: Assessment, facts: dict[str, Any], kb: Knowledge) -> _Screens:
    """Run the red flag, pain generator and contraindication screens."""
    red = _red_flag_screen(facts, kb)
    gen, redirects, region_needs = _generator_screen(facts, set(a.regions), kb)
    absolute, relative = _contraindication_screens(facts, kb)
    checks, check_cautions = _consistency(a, kb)
    med_needs, med_cautions = _medication_review(a, kb)
    return _Screens(
        red,
        gen,
        absolute,
        relative,
        redirects,
        region_needs,
        checks,
        med_needs,
        check_cautions,
        med_cautions,
    )


def _relative_cautions(relative: _Screen, kb: Knowledge) -> list[Caution]:
    """Positive relative contraindications become cautions with their check."""
    out: list[Caution] = []
    for c in kb.pathway.contraindications:
        if c.severity != "relative":
            continue
        for r in relative.positive:
            if r.code == f"contraindication.{c.id}":
                out.append(
                    Caution(
                        code=c.id,
                        text=f"{c.name}: {c.explanation}",
                        action=c.check,
                        fields=r.fields,
                        statement_ids=r.statement_ids,
                    )
                )
    return out


def _rules_that_hold(
    rules: Sequence[CautionRule], facts: dict[str, Any]
) -> list[tuple[CautionRule, list[str]]]:
    """Each pathway rule whose condition holds, with the input fields that made it hold."""
    held = [(rule, evaluate(rule.when, facts)) for rule in rules]
    return [(rule, ev.because) for rule, ev in held if ev.value is True]


def _rule_cautions(facts: dict[str, Any], kb: Knowledge) -> list[Caution]:
    """The pathway's caution rules (failure risks, scope) that hold."""
    return [
        Caution(
            code=rule.id,
            text=rule.text,
            action=rule.name,
            fields=because,
            statement_ids=list(rule.statement_ids),
        )
        for rule, because in _rules_that_hold(kb.pathway.cautions, facts)
    ]


def hazard_statement_ids(hazard: Hazard) -> list[str]:
    """A hazard's own statement ids, or the general one on anatomical hazards (S000.30)."""
    return list(hazard.statement_ids) or ["S000.30"]


def _hazard_cautions(a: Assessment, muscles: list[str], kb: Knowledge) -> list[Caution]:
    """Anatomical hazards (pleura, nerves, vessels) near the muscles that meet the criteria."""
    out: list[Caution] = []
    for hazard_id in dict.fromkeys(h for m in muscles for h in kb.muscles[m].hazards):
        hz = kb.hazards[hazard_id]
        near = [
            kb.muscles[m].name for m in dict.fromkeys(muscles) if hazard_id in kb.muscles[m].hazards
        ]
        out.append(
            Caution(
                code=f"hazard.{hz.id}",
                text=f"{hz.name} ({', '.join(near)}): {hz.risk}",
                action=hz.precaution,
                fields=[
                    f"trigger_points[{i}].muscle"
                    for i, t in enumerate(a.trigger_points)
                    if hazard_id in kb.muscles[t.muscle].hazards
                ],
                statement_ids=hazard_statement_ids(hz),
            )
        )
    return out


def _supporting(facts: dict[str, Any], kb: Knowledge) -> list[Reason]:
    """Findings that support a TPI (trauma, posture, reduced range, headache)."""
    return [
        Reason(
            code=f"supports.{rule.id}",
            text=rule.text,
            fields=because,
            statement_ids=list(rule.statement_ids),
        )
        for rule, because in _rules_that_hold(kb.pathway.supporting_indications, facts)
    ]


def _extra_needs(a: Assessment, phase: DurationPhase | None) -> list[Need]:
    """Non-blocking needs: the pain's duration (phase) and the weight (dose limits)."""
    out: list[Need] = []
    if phase is None:
        out.append(
            Need(
                field="pain.duration_weeks",
                why="acute/subacute/chronic phase and expected number of sessions",
                blocking=False,
            )
        )
    if a.patient.weight_kg is None:
        out.append(
            Need(
                field="patient.weight_kg",
                why="weight-based dose limits when planning",
                blocking=False,
            )
        )
    return out


def _blocking_needs(sc: _Screens, tp: _TriggerPoints, step_needs: list[Need]) -> list[Need]:
    """Every unanswered finding that stands between the screens and a verdict."""
    return [
        *sc.red.needs,
        *sc.gen.needs,
        *tp.needs,
        *sc.absolute.needs,
        *sc.relative.needs,
        *step_needs,
        *sc.checks,
    ]


def _incomplete(sc: _Screens, tp: _TriggerPoints, step_needs: list[Need]) -> Reason:
    """The reason for ``insufficient_findings`` when a needed finding is unanswered."""
    blocking = _blocking_needs(sc, tp, step_needs)
    fields = list(dict.fromkeys(n.field for n in blocking))
    return Reason(
        code="screening_incomplete",
        text="Findings needed before a TPI can be supported are not recorded: "
        + ", ".join(fields)
        + ".",
        fields=fields,
        statement_ids=_screen_ids(sc.red, sc.gen, tp.needs, sc.absolute, sc.relative, step_needs),
    )


def _appropriate(
    tp: _TriggerPoints, step_reasons: list[Reason], supporting: list[Reason]
) -> list[Reason]:
    """The reasons for ``tpi_appropriate``."""
    return [
        *tp.reasons,
        *step_reasons,
        Reason(
            code="pain_primarily_muscular",
            text="No red flag, no other pain generator and no absolute contraindication found.",
            fields=["red_flags", "pain_generators", "contraindications"],
            statement_ids=["S000.11", "S002.16", "S002.12"],
        ),
        *supporting,
    ]


def _verdict(
    sc: _Screens,
    tp: _TriggerPoints,
    care: tuple[bool | None, list[Reason], list[Need]],
    supporting: list[Reason],
) -> tuple[Verdict, list[Reason], RedirectCode | None]:
    """The verdict in the pathway's order of precedence, its reasons and redirect."""
    eligible, step_reasons, step_needs = care
    blocking = _blocking_needs(sc, tp, step_needs)
    if sc.red.positive:
        return "urgent_referral", sc.red.positive, None
    if sc.gen.positive:
        return "not_indicated", sc.gen.positive, sc.redirects[0]
    if tp.met is False:
        return "insufficient_findings", tp.reasons, None
    if sc.absolute.positive:
        return "contraindicated", sc.absolute.positive, None
    if blocking:
        return "insufficient_findings", [_incomplete(sc, tp, step_needs)], None
    if not eligible:
        return "conservative_care_first", step_reasons, None
    return "tpi_appropriate", _appropriate(tp, step_reasons, supporting), None


def _conflicts(
    verdict: Verdict,
    reasons: list[Reason],
    findings: list[Reason],
    cautions: list[Caution],
    kb: Knowledge,
) -> list[ConflictNote]:
    """The evidence conflicts that bear on this result (all of them when TPIs are in view)."""
    ids_in_play = {s for r in [*reasons, *findings] for s in r.statement_ids}
    ids_in_play |= {s for c in cautions for s in c.statement_ids}
    care_ids = {s for i in kb.pathway.comprehensive_care for s in i.statement_ids}
    return [
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


def _expected_course(phase: DurationPhase | None, kb: Knowledge) -> ExpectedCourse:
    """Sessions and relief to expect for the pain's phase."""
    p = kb.pathway
    return ExpectedCourse(
        phase=phase.id if phase else None,
        sessions_min=phase.sessions_min if phase else None,
        sessions_max=phase.sessions_max if phase else None,
        relief=p.expected_relief.text,
        statement_ids=[
            *(phase.statement_ids if phase else ["S000.20"]),
            *p.expected_relief.statement_ids,
        ],
    )


def _cautions(
    a: Assessment, facts: dict[str, Any], sc: _Screens, tp: _TriggerPoints, kb: Knowledge
) -> list[Caution]:
    """Every caution: relative contraindications, rule cautions, anatomical hazards."""
    return [
        *_relative_cautions(sc.relative, kb),
        *_rule_cautions(facts, kb),
        *_hazard_cautions(a, tp.muscles, kb),
        *sc.check_cautions,
        *sc.medication_cautions,
    ]


def _findings(
    sc: _Screens,
    tp: _TriggerPoints,
    step_reasons: list[Reason],
    supporting: list[Reason],
    reasons: list[Reason],
) -> list[Reason]:
    """Every positive finding not already given as a reason for the verdict."""
    used = {id(r) for r in reasons}
    everything = [*sc.red.positive, *sc.gen.positive, *tp.reasons, *sc.absolute.positive]
    everything += [*step_reasons, *supporting]
    return [r for r in everything if id(r) not in used]


def assess(
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
    facts = _facts(assessment, kb)
    sc = _screens(assessment, facts, kb)
    tp = _TriggerPoints(*_trigger_points(assessment, kb))
    cautions = _cautions(assessment, facts, sc, tp, kb)
    supporting = _supporting(facts, kb)
    stepped, eligible, step_reasons, step_needs, step_cautions = _stepped_care(
        assessment, kb, policy
    )
    cautions.extend(step_cautions)
    verdict, reasons, redirect = _verdict(sc, tp, (eligible, step_reasons, step_needs), supporting)
    findings = _findings(sc, tp, step_reasons, supporting, reasons)
    phase = _phase(assessment.pain.duration_weeks, kb)
    blocking = _blocking_needs(sc, tp, step_needs)
    extra = [*sc.region_needs, *sc.medication_needs, *_extra_needs(assessment, phase)]
    needs = list({n.field: n for n in [*blocking, *extra]}.values())
    return _recommendation(
        verdict,
        redirect,
        sc.redirects,
        reasons,
        cautions,
        needs,
        findings,
        stepped,
        phase,
        kb,
        as_of,
    )


def _recommendation(
    verdict: Verdict,
    redirect: RedirectCode | None,
    redirects: list[RedirectCode],
    reasons: list[Reason],
    cautions: list[Caution],
    needs: list[Need],
    findings: list[Reason],
    stepped: SteppedCare,
    phase: DurationPhase | None,
    kb: Knowledge,
    as_of: date,
) -> Recommendation:
    """Assemble the result with the pathway's care, pitfalls, course and evidence."""
    p = kb.pathway
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
        expected_course=_expected_course(phase, kb),
        evidence_notes=_items(p.evidence_notes),
        before_procedure=_items(p.procedure_essentials) if verdict == "tpi_appropriate" else [],
        follow_up=_items(p.follow_up),
        conflicts=_conflicts(verdict, reasons, findings, cautions, kb),
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
    """The statements behind the screens that are still incomplete."""
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
