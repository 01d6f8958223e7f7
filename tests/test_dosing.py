"""The dose engine against the published limits, at the boundaries, with mixtures and ledgers.

Label values tested here (US FDA prescribing information, Dosage and Administration):
- Xylocaine (lidocaine): 4.5 mg/kg up to 300 mg plain; 7 mg/kg up to 500 mg with epinephrine.
- Marcaine (bupivacaine): single doses up to 175 mg plain, 225 mg with epinephrine; at most
  400 mg in 24 hours (also seed statement S000.28).
- Naropin (ropivacaine): local infiltration 0.5%, up to 40 mL = 200 mg.
- Carbocaine (mepivacaine): usually not above 400 mg per procedure; at most 1,000 mg in 24 hours.
Other sources kept beside them: BNF (lidocaine plain max 200 mg; bupivacaine 2 mg/kg in any
4 hours, 400 mg/24 h) and Olson, Poisoning & Drug Overdose (bupivacaine 2 mg/kg or 175 mg,
3 mg/kg or 225 mg with vasoconstrictor; ropivacaine 3 mg/kg or 200 mg; mepivacaine 4.5 mg/kg
or 350 mg).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triggerpath.domain.dosing import (
    DoseCheck,
    DoseRequest,
    PriorDose,
    SolutionDose,
    check_dose,
    parse_dose_request,
)
from triggerpath.domain.policy import Policy
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge

from .strategies import KB

D = Decimal
LABEL = Policy(dose_limit_source="fda_label", dose_weight_basis="actual")
CONSERVATIVE_ACTUAL = Policy(dose_weight_basis="actual")


def sol(agent: str, percent: str, ml: str, epi: bool = False) -> SolutionDose:
    return SolutionDose(agent=agent, percent=D(percent), ml=D(ml), epinephrine=epi)


def check(
    kb: Knowledge,
    *solutions: SolutionDose,
    weight: str = "100",
    prior: list[tuple[str, str]] | None = None,
    policy: Policy = LABEL,
    height: str | None = None,
    sex: Any = None,
) -> DoseCheck:
    request = DoseRequest(
        weight_kg=D(weight),
        height_cm=D(height) if height else None,
        sex=sex,
        solutions=list(solutions),
        prior_24h=[PriorDose(agent=a, mg=D(mg)) for a, mg in prior or []],
    )
    return check_dose(request, kb, policy=policy)


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {p.field: p.reason for p in exc.value.problems}


# --------------------------------------------------------------------------- the data
def test_label_values_are_the_published_ones(kb: Knowledge) -> None:
    """The FDA label entries carry the label numbers (sources named in the module docstring)."""
    inj = kb.injectates

    def label(agent: str, epi: bool) -> tuple[Decimal | None, Decimal | None]:
        la = inj.agent(agent)
        assert la is not None
        e = next(x for x in la.form_limits(epi) if x.source == "fda_label")
        return e.mg_per_kg, e.max_mg

    def daily(agent: str) -> Decimal | None:
        la = inj.agent(agent)
        assert la is not None
        return next((d.max_mg for d in la.limits_24h if d.source == "fda_label"), None)

    assert label("lidocaine", False) == (D("4.5"), D(300))  # Xylocaine
    assert label("lidocaine", True) == (D(7), D(500))  # Xylocaine with epinephrine
    assert label("bupivacaine", False) == (None, D(175))  # Marcaine, S000.28
    assert label("bupivacaine", True) == (None, D(225))  # Marcaine with epinephrine, S000.28
    assert daily("bupivacaine") == D(400)  # Marcaine total daily dose, S000.28
    assert label("ropivacaine", False) == (None, D(200))  # Naropin infiltration
    assert label("mepivacaine", False) == (None, D(400))  # Carbocaine
    assert daily("mepivacaine") == D(1000)  # Carbocaine 24 hours
    bnf = next(e for e in inj.agent("lidocaine").limits.plain if e.source == "uk_bnf")  # type: ignore[union-attr]
    assert bnf.max_mg == D(200)  # BNF: lidocaine infiltration max 200 mg


def test_marketed_strengths_cover_the_issue(kb: Knowledge) -> None:
    inj = kb.injectates
    lido, bupi = inj.agent("lidocaine"), inj.agent("bupivacaine")
    assert lido is not None and bupi is not None
    for epi in (False, True):
        assert {D("0.5"), D(1), D(2)} <= set(lido.marketed(epi))
        assert {D("0.25"), D("0.5")} <= set(bupi.marketed(epi))
    assert inj.agent("ropivacaine") is not None and inj.agent("mepivacaine") is not None
    # S000.29: the toxicity signs of the source are all listed
    early = " ".join(inj.toxicity.early)
    for sign in ("restless", "anxiety", "dizziness", "tinnitus", "blurred vision", "tremor"):
        assert sign in early
    assert "S000.29" in inj.toxicity.statement_ids
    # S003.09: corticosteroid 4-30 mg; S004.02: does not help everyone
    cs = inj.corticosteroids
    assert (cs.dose_mg_min, cs.dose_mg_max) == (D(4), D(30))
    assert {"S003.09", "S004.02"} <= set(cs.statement_ids)
    assert {a.id for a in cs.agents} == {"triamcinolone", "methylprednisolone", "dexamethasone"}
    alts = {a.id: a for a in inj.alternatives}
    assert {"S001.07", "S004.07"} <= set(alts["dry_needling"].statement_ids)
    assert "S000.34" in alts["jet_injection"].statement_ids


# --------------------------------------------------------------------------- label boundaries
@pytest.mark.parametrize(
    ("solution", "weight", "limited_by", "limit"),
    [
        # Xylocaine plain: 300 mg cap (100 kg x 4.5 = 450) / 4.5 mg/kg (60 kg -> 270 mg)
        (("lidocaine", "1", "30", False), "100", "cap", "300"),
        (("lidocaine", "1", "27", False), "60", "weight", "270"),
        # Xylocaine with epinephrine: 500 mg cap / 7 mg/kg (60 kg -> 420 mg)
        (("lidocaine", "2", "25", True), "100", "cap", "500"),
        (("lidocaine", "2", "21", True), "60", "weight", "420"),
        # Marcaine: 175 mg plain, 225 mg with epinephrine (S000.28)
        (("bupivacaine", "0.25", "70", False), "120", "cap", "175"),
        (("bupivacaine", "0.5", "45", True), "120", "cap", "225"),
        # Naropin: 200 mg for infiltration
        (("ropivacaine", "0.5", "40", False), "100", "cap", "200"),
        # Carbocaine: 400 mg
        (("mepivacaine", "1", "40", False), "120", "cap", "400"),
    ],
)
def test_label_limit_exactly_at_just_under_just_over(
    kb: Knowledge,
    solution: tuple[str, str, str, bool],
    weight: str,
    limited_by: str,
    limit: str,
) -> None:
    agent, pct, ml, epi = solution
    at = check(kb, sol(agent, pct, ml, epi), weight=weight)
    a = at.agents[0]
    assert a.max_mg == D(limit) and a.limited_by == limited_by
    assert a.mg == D(limit) and at.fraction == 1
    assert at.level == "caution"  # exactly at the limit is allowed (<= 1), above 80% -> caution
    under = check(kb, sol(agent, pct, str(D(ml) - D("0.1")), epi), weight=weight)
    assert under.level == "caution" and under.fraction < 1
    over = check(kb, sol(agent, pct, str(D(ml) + D("0.01")), epi), weight=weight)
    assert over.level == "exceeds" and over.agents[0].level == "exceeds"


def test_caution_threshold_is_strictly_above_the_fraction(kb: Knowledge) -> None:
    # Xylocaine 300 mg: 240 mg is exactly 0.8 -> ok; a hair above -> caution
    assert check(kb, sol("lidocaine", "1", "24")).level == "ok"
    assert check(kb, sol("lidocaine", "1", "24.01")).level == "caution"
    half = LABEL.model_copy(update={"dose_caution_fraction": D("0.5")})
    assert check(kb, sol("lidocaine", "1", "15"), policy=half).level == "ok"
    assert check(kb, sol("lidocaine", "1", "15.1"), policy=half).level == "caution"


def test_conservative_default_uses_the_lowest_value_of_any_source(kb: Knowledge) -> None:
    # lidocaine plain: BNF 200 mg beats the label's 300 mg
    at = check(kb, sol("lidocaine", "1", "20"), policy=CONSERVATIVE_ACTUAL)
    a = at.agents[0]
    assert (a.max_mg, a.cap_source, at.level) == (D(200), "uk_bnf", "caution")
    assert check(kb, sol("lidocaine", "1", "20.1"), policy=CONSERVATIVE_ACTUAL).level == "exceeds"
    assert {s.source for s in a.sources} == {"fda_label", "uk_bnf", "textbook"}
    assert "sources differ" in a.source_range and "200-300" in a.source_range
    # bupivacaine plain: 2 mg/kg (BNF, Olson) x 70 kg = 140 mg is lower than the 175 mg cap
    b = check(kb, sol("bupivacaine", "0.25", "56"), weight="70", policy=CONSERVATIVE_ACTUAL)
    assert (b.agents[0].max_mg, b.agents[0].limited_by, b.level) == (D(140), "weight", "caution")
    over = check(kb, sol("bupivacaine", "0.25", "56.1"), weight="70", policy=CONSERVATIVE_ACTUAL)
    assert over.level == "exceeds"
    # mepivacaine: Olson 350 mg beats Carbocaine's 400 mg; ropivacaine 3 mg/kg (Olson)
    m = check(kb, sol("mepivacaine", "1", "35"), weight="120", policy=CONSERVATIVE_ACTUAL)
    assert m.agents[0].max_mg == D(350) and m.level == "caution"
    r = check(kb, sol("ropivacaine", "0.5", "30"), weight="50", policy=CONSERVATIVE_ACTUAL)
    assert r.agents[0].max_mg == D(150) and r.level == "caution"  # 3 mg/kg x 50 kg
    assert Policy().dose_limit_source == "conservative"


def test_a_chosen_source_silent_on_mg_per_kg_falls_back_to_the_most_conservative(
    kb: Knowledge,
) -> None:
    # Marcaine gives no mg/kg: for a 50 kg patient 2 mg/kg (BNF and Olson) still applies
    r = check(kb, sol("bupivacaine", "0.25", "40"), weight="50")
    a = r.agents[0]
    assert (a.max_mg, a.mg_per_kg_source, a.limited_by) == (D(100), "uk_bnf, textbook", "weight")
    assert r.level == "caution"
    assert check(kb, sol("bupivacaine", "0.25", "40.1"), weight="50").level == "exceeds"


# --------------------------------------------------------------------------- 24-hour ledger
def test_bupivacaine_24_hour_total_400_mg(kb: Knowledge) -> None:
    """Marcaine / S000.28: not over 400 mg in 24 hours, earlier doses included."""
    now = sol("bupivacaine", "0.5", "30")  # 150 mg, 0.86 of the 175 mg single dose
    at = check(kb, now, weight="120", prior=[("bupivacaine", "250")])
    day = at.daily[0]
    assert (day.prior_mg, day.now_mg, day.total_mg) == (D(250), D(150), D(400))
    assert day.max_mg == D(400)
    assert day.max_source == "fda_label" and at.level == "caution"
    assert check(kb, now, weight="120", prior=[("bupivacaine", "249")]).level == "caution"
    over = check(kb, now, weight="120", prior=[("bupivacaine", "250.5")])
    assert over.level == "exceeds" and over.daily[0].level == "exceeds"
    assert over.agents[0].level == "exceeds"  # the agent's row shows the 24-hour breach too
    assert any(r.code == "daily.bupivacaine" and "S000.28" in r.statement_ids for r in at.reasons)


def test_mepivacaine_24_hour_total_1000_mg(kb: Knowledge) -> None:
    """Carbocaine: total dose in any 24 hours not above 1,000 mg."""
    now = sol("mepivacaine", "1", "30")  # 300 mg of the 400 mg single dose
    assert check(kb, now, weight="120", prior=[("mepivacaine", "700")]).level == "caution"
    assert check(kb, now, weight="120", prior=[("mepivacaine", "701")]).level == "exceeds"


def test_without_a_24_hour_limit_earlier_doses_count_against_the_single_maximum(
    kb: Knowledge,
) -> None:
    now = sol("lidocaine", "1", "15")  # 150 mg of 300 (Xylocaine)
    at = check(kb, now, prior=[("lidocaine", "150")])
    day = at.daily[0]
    assert day.max_source == "unlabelled_24h_rule" and day.max_mg is None
    assert day.prior_limit_mg == D(300)
    assert at.level == "caution" and day.fraction == 1
    assert check(kb, now, prior=[("lidocaine", "150.1")]).level == "exceeds"


def test_a_prior_dose_of_another_agent_joins_the_24_hour_mixture(kb: Knowledge) -> None:
    # lidocaine 150 mg now (0.5 of 300) + bupivacaine 200 mg earlier (0.5 of 400) = 1.0
    now = sol("lidocaine", "1", "15")
    at = check(kb, now, prior=[("bupivacaine", "200")])
    assert at.mixture.fraction_single == D("0.5") and at.mixture.fraction_24h == 1
    assert at.level == "caution"
    assert check(kb, now, prior=[("bupivacaine", "201")]).level == "exceeds"


# --------------------------------------------------------------------------- mixtures
def test_mixture_fractions_add_up(kb: Knowledge) -> None:
    """Additive toxicity: half the lidocaine maximum + half the bupivacaine maximum is all of it."""
    lido = sol("lidocaine", "1", "15")  # 150 of 300 mg
    bupi = sol("bupivacaine", "0.25", "35")  # 87.5 of 175 mg
    at = check(kb, lido, bupi)
    assert [a.fraction for a in at.agents] == [D("0.5"), D("0.5")]
    assert all(a.level == "ok" for a in at.agents)  # each alone is fine ...
    assert at.level == "caution" and at.mixture.fraction_single == 1  # ... together at the limit
    over = check(kb, lido, sol("bupivacaine", "0.25", "35.1"))
    assert over.level == "exceeds"
    assert over.mixture.convention == "additive_fraction"
    assert any("Carbocaine" in r for r in over.mixture.references)  # the convention's source
    assert any(r.code == "mixture" for r in over.reasons)
    # with epinephrine: 250 of 500 mg + 112.5 of 225 mg
    epi = check(
        kb, sol("lidocaine", "1", "25", True), sol("bupivacaine", "0.5", "22.5", True), weight="120"
    )
    assert epi.mixture.fraction_single == 1 and epi.level == "caution"


def test_same_agent_plain_and_with_epinephrine_each_against_its_own_maximum(
    kb: Knowledge,
) -> None:
    # 150 mg plain (0.5 of 300) + 250 mg with epinephrine (0.5 of 500)
    at = check(kb, sol("lidocaine", "1", "15"), sol("lidocaine", "1", "25", True))
    assert len(at.agents) == 2 and at.mixture.fraction_single == 1 and at.level == "caution"
    assert at.daily[0].now_mg == D(400)
    over = check(kb, sol("lidocaine", "1", "15"), sol("lidocaine", "1", "25.1", True))
    assert over.level == "exceeds"


def test_remaining_allowance_in_ml_per_solution(kb: Knowledge) -> None:
    one = check(kb, sol("lidocaine", "1", "20"))  # 200 of 300 mg -> 100 mg = 10 mL of 1%
    assert one.solutions[0].remaining_ml == D(10)
    mix = check(kb, sol("lidocaine", "1", "15"), sol("bupivacaine", "0.25", "17.5"))
    # fractions 0.5 + 0.25: a quarter left = 75 mg lidocaine (7.5 mL) or 43.75 mg bupivacaine
    assert [s.remaining_ml for s in mix.solutions] == [D("7.5"), D("17.5")]
    over = check(kb, sol("lidocaine", "1", "40"))
    assert over.solutions[0].remaining_ml == 0


def test_mg_is_percent_times_ten_times_ml_exactly(kb: Knowledge) -> None:
    r = check(kb, sol("bupivacaine", "0.25", "10.3"))
    assert r.solutions[0].mg == D("25.75") and r.solutions[0].mg_per_ml == D("2.5")
    r = check(kb, sol("lidocaine", "0.5", "0.1"), sol("lidocaine", "0.5", "0.2"))
    assert r.agents[0].mg == D("1.5")  # no binary floating point drift (0.1 + 0.2)


# --------------------------------------------------------------------------- weight policy
def test_weight_policy_actual_ideal_lean(kb: Knowledge) -> None:
    male: dict[str, Any] = {"weight": "84", "height": "178", "sex": "male"}
    lido = sol("lidocaine", "1", "10")
    actual = check(kb, lido, policy=LABEL, **male)
    assert actual.weight.basis == "actual" and actual.weight.kg == 84
    # Devine 1974: 50 kg + 2.3 kg per inch over 60 in; 178 cm = 70.08 in -> 73.18 kg
    ideal = check(kb, lido, policy=LABEL.model_copy(update={"dose_weight_basis": "ideal"}), **male)
    assert ideal.weight.basis == "ideal" and ideal.weight.kg == D("73.1")
    # Janmahasatian 2005: 9270 x 84 / (6680 + 216 x 26.51) = 62.76 kg
    lean_policy = LABEL.model_copy(update={"dose_weight_basis": "lean"})
    lean = check(kb, lido, policy=lean_policy, **male)
    assert lean.weight.basis == "lean" and lean.weight.kg == D("62.7")
    assert lean.agents[0].max_mg == D("282.15")  # 4.5 mg/kg x 62.7 kg, below the 300 mg cap
    assert "Janmahasatian" in lean.weight.reason
    assert (lean.weight.ideal_kg, lean.weight.lean_kg) == (D("73.1"), D("62.7"))


def test_weight_never_above_actual_and_falls_back_with_a_reason(kb: Knowledge) -> None:
    ideal = LABEL.model_copy(update={"dose_weight_basis": "ideal"})
    # Devine for a 160 cm woman is 52.4 kg: more than her 45 kg, so 45 kg is used
    r = check(kb, sol("lidocaine", "1", "5"), policy=ideal, weight="45", height="160", sex="female")
    assert r.weight.kg == 45 and "capped" in r.weight.reason
    # lean weight needs the height: without it the actual weight is used, and said so
    r = check(kb, sol("lidocaine", "1", "5"), policy=Policy(), weight="84")
    assert (r.weight.basis, r.weight.requested_basis) == ("actual", "lean")
    assert r.weight.kg == D(84)
    assert "height" in r.weight.reason
    # sex not male/female: the lower (female) formula
    other = check(
        kb, sol("lidocaine", "1", "5"), policy=Policy(), weight="84", height="178", sex="other"
    )
    female = check(
        kb, sol("lidocaine", "1", "5"), policy=Policy(), weight="84", height="178", sex="female"
    )
    assert other.weight.kg == female.weight.kg < D("62.7")
    assert "female" in other.weight.reason
    assert Policy().dose_weight_basis == "lean"


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"weight_kg": "0"}, "weight_kg", "more than 0"),
        ({"weight_kg": "-70"}, "weight_kg", "more than 0"),
        ({"weight_kg": "7"}, "weight_kg", "adult range"),
        ({"weight_kg": "700"}, "weight_kg", "units"),
        ({"weight_kg": "NaN"}, "weight_kg", "finite"),
        ({"height_cm": "50"}, "height_cm", "between"),
        ({"percent": "0"}, "solutions[0].percent", "more than 0%"),
        ({"percent": "-1"}, "solutions[0].percent", "more than 0%"),
        ({"percent": "101"}, "solutions[0].percent", "over 100%"),
        ({"percent": "0.3"}, "solutions[0].percent", "not a marketed strength"),
        ({"percent": "0.75"}, "solutions[0].percent", "not a marketed strength"),
        ({"ml": "0"}, "solutions[0].ml", "more than 0 mL"),
        ({"ml": "-3"}, "solutions[0].ml", "more than 0 mL"),
        ({"ml": "600"}, "solutions[0].ml", "not a TPI volume"),
        ({"agent": "procaine"}, "solutions[0].agent", "unknown local anesthetic"),
        ({"prior_agent": "cocaine"}, "prior_24h[0].agent", "unknown local anesthetic"),
        ({"prior_mg": "0"}, "prior_24h[0].mg", "more than 0 mg"),
        ({"prior_mg": "50000"}, "prior_24h[0].mg", "not plausible"),
    ],
)
def test_every_bad_input_names_its_field(
    kb: Knowledge, change: dict[str, str], field: str, words: str
) -> None:
    data: dict[str, Any] = {
        "weight_kg": change.get("weight_kg", "80"),
        "solutions": [
            {
                "agent": change.get("agent", "bupivacaine"),
                "percent": change.get("percent", "0.25"),
                "ml": change.get("ml", "10"),
            }
        ],
        "prior_24h": [
            {"agent": change.get("prior_agent", "bupivacaine"), "mg": change.get("prior_mg", "10")}
        ],
    }
    if "height_cm" in change:
        data["height_cm"] = change["height_cm"]
    with pytest.raises(InvalidInput) as exc:
        check_dose(parse_dose_request(data), kb)
    found = problems(exc)
    assert field in found, found
    assert words in found[field]


def test_epinephrine_where_none_is_marketed_and_non_marketed_strengths_by_policy(
    kb: Knowledge,
) -> None:
    with pytest.raises(InvalidInput) as exc:
        check(kb, sol("ropivacaine", "0.5", "10", True))
    assert "solutions[0].epinephrine" in problems(exc)
    allow = LABEL.model_copy(update={"allow_non_marketed_strength": True})
    r = check(kb, sol("bupivacaine", "0.3", "10"), policy=allow)  # compounded: allowed
    assert r.agents[0].mg == D(30)
    with pytest.raises(InvalidInput) as exc:
        check(kb, sol("bupivacaine", "101", "10"), policy=allow)  # still never over 100%
    assert "solutions[0].percent" in problems(exc)


def test_all_problems_are_reported_together_and_types_are_checked(kb: Knowledge) -> None:
    with pytest.raises(InvalidInput) as exc:
        check(kb, sol("procaine", "0", "0"), weight="0")
    assert set(problems(exc)) >= {
        "weight_kg",
        "solutions[0].agent",
        "solutions[0].percent",
        "solutions[0].ml",
    }
    with pytest.raises(InvalidInput) as exc:
        parse_dose_request({"weight_kg": "heavy", "solutions": []})
    assert {"weight_kg", "solutions"} <= set(problems(exc))
    with pytest.raises(InvalidInput):
        parse_dose_request([1, 2])


def test_aliases_and_case_are_accepted(kb: Knowledge) -> None:
    r = check(kb, sol("Marcaine", "0.25", "10"), sol("LIGNOCAINE", "1", "5"))
    assert [a.agent for a in r.agents] == ["bupivacaine", "lidocaine"]


def test_every_reason_cites_statement_ids_and_json_has_level_first(kb: Knowledge) -> None:
    r = check(kb, sol("lidocaine", "1", "20"), sol("bupivacaine", "0.25", "10", True))
    assert all(x.statement_ids for x in r.reasons)
    assert "S000.29" in r.toxicity.statement_ids
    data = r.model_dump(mode="json")
    assert next(iter(data)) == "level"
    assert isinstance(data["agents"][0]["mg"], int | float)


# --------------------------------------------------------------------------- the property
AGENT_FORMS = [
    (la.id, epi, p)
    for la in KB.injectates.local_anesthetics
    for epi in (False, True)
    for p in la.marketed(epi)
]


def _limits(agent: str, epi: bool) -> list[tuple[Decimal | None, Decimal | None]]:
    la = KB.injectates.agent(agent)
    assert la is not None
    return [(e.mg_per_kg, e.max_mg) for e in la.form_limits(epi)]


def _selected(values: list[tuple[Decimal | None, str]], source: str) -> Decimal | None:
    given = [(v, s) for v, s in values if v is not None]
    if not given:
        return None
    own = [v for v, s in given if s == source]
    return own[0] if own and source != "conservative" else min(v for v, _ in given)


def _oracle_exceeds(req: DoseRequest, policy: Policy, weight: Decimal) -> bool:
    """Independent recomputation: does any total exceed any limit the policy applies?"""
    inj = KB.injectates
    source = policy.dose_limit_source
    now: dict[tuple[str, bool], Fraction] = {}
    for s in req.solutions:
        la = inj.agent(s.agent)
        assert la is not None
        key = (la.id, s.epinephrine)
        now[key] = now.get(key, Fraction(0)) + Fraction(s.percent) * 10 * Fraction(s.ml)
    single_max: dict[tuple[str, bool], Fraction] = {}
    for (aid, epi), _mg in now.items():
        la = inj.agent(aid)
        assert la is not None
        entries = la.form_limits(epi)
        per_kg = _selected([(e.mg_per_kg, e.source) for e in entries], source)
        cap = _selected([(e.max_mg, e.source) for e in entries], source)
        options = [Fraction(v) for v in (cap,) if v is not None]
        if per_kg is not None:
            options.append(Fraction(per_kg) * Fraction(weight))
        single_max[(aid, epi)] = min(options)
    if any(now[k] > single_max[k] for k in now):
        return True
    if sum((now[k] / single_max[k] for k in now), Fraction(0)) > 1:
        return True
    prior: dict[str, Fraction] = {}
    for p in req.prior_24h:
        la = inj.agent(p.agent)
        assert la is not None
        prior[la.id] = prior.get(la.id, Fraction(0)) + Fraction(p.mg)
    frac = Fraction(0)
    for aid in {*prior, *(k[0] for k in now)}:
        la = inj.agent(aid)
        assert la is not None
        earlier = prior.get(aid, Fraction(0))
        today = {k: mg for k, mg in now.items() if k[0] == aid}
        daily = _selected([(d.max_mg, d.source) for d in la.limits_24h], source)
        if daily is not None:  # a labelled 24-hour maximum
            total = earlier + sum(today.values(), Fraction(0))
            if total > daily:
                return True
            frac += total / Fraction(daily)
            continue
        # no 24-hour maximum: earlier doses count against the lowest single maximum in play
        if today:
            limit = min(single_max[k] for k in today)
        else:
            entries = la.form_limits(False)
            per_kg = _selected([(e.mg_per_kg, e.source) for e in entries], source)
            cap = _selected([(e.max_mg, e.source) for e in entries], source)
            opts = [Fraction(cap)] if cap is not None else []
            if per_kg is not None:
                opts.append(Fraction(per_kg) * Fraction(weight))
            limit = min(opts)
        part = earlier / limit + sum((mg / single_max[k] for k, mg in today.items()), Fraction(0))
        if part > 1:
            return True
        frac += part
    return frac > 1


solutions = st.lists(
    st.builds(
        lambda form, ml: SolutionDose(agent=form[0], percent=form[2], ml=ml, epinephrine=form[1]),
        st.sampled_from(AGENT_FORMS),
        st.decimals(min_value=D("0.1"), max_value=D(150), places=2),
    ),
    min_size=1,
    max_size=4,
)
priors = st.lists(
    st.builds(
        PriorDose,
        agent=st.sampled_from([la.id for la in KB.injectates.local_anesthetics]),
        mg=st.decimals(min_value=D(1), max_value=D(600), places=1),
    ),
    max_size=3,
)
requests = st.builds(
    DoseRequest,
    weight_kg=st.decimals(min_value=D(20), max_value=D(400), places=1),
    height_cm=st.none() | st.decimals(min_value=D(120), max_value=D(250), places=0),
    sex=st.none() | st.sampled_from(["female", "male", "other", "unknown"]),
    solutions=solutions,
    prior_24h=priors,
)
policies = st.builds(
    Policy,
    dose_limit_source=st.sampled_from(["conservative", "fda_label", "uk_bnf", "textbook"]),
    dose_weight_basis=st.sampled_from(["actual", "ideal", "lean"]),
    dose_caution_fraction=st.decimals(min_value=D("0.05"), max_value=D(1), places=2),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests, policies)
def test_property_never_ok_or_caution_when_a_total_exceeds_a_limit(
    req: DoseRequest, policy: Policy
) -> None:
    result = check_dose(req, KB, policy=policy)
    exceeds = _oracle_exceeds(req, policy, result.weight.kg)
    if exceeds:
        assert result.level == "exceeds"
    else:
        assert result.level in ("ok", "caution")  # and no false alarm either
    assert result.weight.kg <= req.weight_kg
    for a in result.agents:
        assert a.max_mg <= (a.cap_mg if a.cap_mg is not None else a.max_mg)
        if a.mg > a.max_mg:
            assert result.level == "exceeds"
    for d in result.daily:
        if d.max_mg is not None and d.total_mg > d.max_mg:
            assert result.level == "exceeds"
        one_form = len({a.epinephrine for a in result.agents if a.agent == d.agent}) < 2
        if d.max_mg is None and one_form and d.total_mg > d.prior_limit_mg:
            assert result.level == "exceeds"  # one form: earlier + now against its maximum


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_property_conservative_default_respects_every_source(req: DoseRequest) -> None:
    """Under the default policy a dose over *any* source's limit is never ok or caution."""
    result = check_dose(req, KB)
    w = result.weight.kg
    for s in req.solutions:
        la = KB.injectates.agent(s.agent)
        assert la is not None
        mg = sum(
            (
                x.percent * 10 * x.ml
                for x in req.solutions
                if KB.injectates.agent(x.agent) is la and x.epinephrine == s.epinephrine
            ),
            D(0),
        )
        for per_kg, cap in _limits(la.id, s.epinephrine):
            if (cap is not None and mg > cap) or (per_kg is not None and mg > per_kg * w):
                assert result.level == "exceeds"
