"""The property harness of issue 12 §7: generated inputs through the domain and the CLI.

Strategies come from two places:

- the JSON Schemas the entry points publish (``assessment_json_schema``, the plan and
  dose request schemas) through ``hypothesis-jsonschema``: anything a client may send,
  mostly refused by the semantic checks, which is the point;
- structured generators (:mod:`tests.strategies`) that reach the verdicts, plus
  adversarial pieces: anticoagulant and antiplatelet names of the value sets in
  decorated spellings, positive pain generators and red flags under any region, and
  hostile numbers (huge or tiny exponents, text, booleans).

Each ``check_*`` runs one input and asserts the properties:

1. no exception other than ``InvalidInput`` (the documented validation error);
2. an active anticoagulant in any spelling never yields a ``ready`` plan without its
   acknowledgement; any plan with such a medicine requires acknowledging it;
3. a positive red flag anywhere -> ``urgent_referral``;
4. a positive non-myofascial pain generator anywhere (whatever ``regions`` says) ->
   never ``tpi_appropriate``.

Time per call is measured by the callers (the suite asserts no timing; the long run in
``bench/properties.py`` reports the slowest call).
"""

from __future__ import annotations

import copy
import time
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from random import Random
from typing import Any

from hypothesis import strategies as st

from triggerpath.domain.dosing import DoseRequest, check_dose, parse_dose_request
from triggerpath.domain.engine import assess
from triggerpath.domain.planning import parse_plan_request, plan_from_request, plan_json_schema
from triggerpath.domain.validation import assessment_json_schema, parse_assessment
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.conditions import evaluate

from .conftest import AS_OF, example
from .schema_strategies import from_schema
from .strategies import KB, RED_FLAGS, assessments

BLEEDING = {
    cls: sorted({n for vs in KB.valuesets.valuesets if vs.drug_class == cls for n in vs.names})
    for cls in ("anticoagulant", "antiplatelet")
}
AGENTS = sorted(la.id for la in KB.injectates.local_anesthetics)
#: (agent, marketed plain strength) pairs
PLAIN = sorted({(la.id, p) for la in KB.injectates.local_anesthetics for p in la.marketed(False)})


# --------------------------------------------------------------------------- strategies
def _clean(schema: dict[str, Any]) -> dict[str, Any]:
    """A Pydantic 2020-12 schema in the form hypothesis-jsonschema reads."""
    out = copy.deepcopy(schema)
    out.pop("$schema", None)
    out.pop("$id", None)
    return out


@st.composite
def spelled(draw: st.DrawFn, name: str) -> str:
    """``name`` as a record might spell it: case, marks, strength, spaces, full width."""
    word = draw(st.sampled_from([name, name.upper(), name.title(), name.capitalize()]))
    if draw(st.booleans()):
        word = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)
        word = draw(st.sampled_from([word, unicodedata.normalize("NFKC", word)]))
    mark = draw(st.sampled_from(["", "®", "™", "©", " ®"]))
    space = draw(st.sampled_from([" ", "\u00a0", "\t", "  ", "\u2009"]))
    dose = draw(st.sampled_from(["", "5 mg", "5mg", "20 MG", "81", "2.5 mg bid", "40mg/0.4mL"]))
    how = draw(st.sampled_from(["", " daily", " po", " oral tablet", " (home med)"]))
    return f"{word}{mark}{space}{dose}{how}".strip() if dose or how else f"{word}{mark}"


BASE = example("ql_chronic_low_back")
GENERATOR_FIELDS = [
    (group, name)
    for group, fields in BASE["pain_generators"].items()
    for name in fields
    if group != "sacroiliac" or name != "provocation_tests_positive"
] + [("radicular", "imaging_root_compression"), ("facet", "medial_branch_block_positive")]
REGIONS = ["neck", "upper_back", "mid_back", "low_back", "pelvic_girdle"]


@st.composite
def near_base(draw: st.DrawFn) -> dict[str, Any]:
    """The safe base case (TPI appropriate) with one to three changes: the verdicts all
    occur, and a plan is often otherwise ready, so the acknowledgement property bites."""
    data = copy.deepcopy(BASE)
    if draw(st.booleans()):
        data["regions"] = draw(st.lists(st.sampled_from(REGIONS), min_size=1, unique=True))
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            group, name = draw(st.sampled_from(GENERATOR_FIELDS))
            data["pain_generators"][group][name] = True
        elif kind == 1:
            data["red_flags"][draw(st.sampled_from(RED_FLAGS))] = True
        elif kind == 2:
            data["pain"]["nrs"] = draw(st.integers(0, 10))
        else:
            data["conservative_care"][0]["weeks"] = draw(st.floats(0, 60, allow_nan=False))
    return data


@st.composite
def assessment_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Structured assessments, often with a spelled bleeding-risk medicine added."""
    data: dict[str, Any] = draw(st.one_of(assessments(), near_base()))
    if draw(st.integers(0, 2)) == 0:
        cls = draw(st.sampled_from(sorted(BLEEDING)))
        name = draw(spelled(draw(st.sampled_from(BLEEDING[cls]))))
        meds = list(data.get("medications") or [])
        meds.insert(draw(st.integers(0, len(meds))), {"name": name})
        data["medications"] = meds
    return data


def schema_assessments() -> st.SearchStrategy[dict[str, Any]]:
    """Anything the published assessment schema allows."""
    return from_schema(_clean(assessment_json_schema(KB)))


@st.composite
def plan_cases(draw: st.DrawFn) -> dict[str, Any]:
    """A plan on a structured assessment (weight always given, so planning runs)."""
    a = draw(assessment_cases())
    a["patient"]["weight_kg"] = draw(st.sampled_from([50, 70, 84, 120]))
    tps = a.get("trigger_points") or [{"muscle": "quadratus_lumborum", "side": "right"}]
    targets = [
        {"muscle": tp["muscle"], "side": tp["side"], "sites": draw(st.integers(1, 4))}
        for tp in tps[:3]
    ]
    agent, percent = draw(st.sampled_from(PLAIN))
    solution = {"agent": agent, "percent": percent}
    data: dict[str, Any] = {
        "assessment": a,
        "targets": targets,
        "injectate": {"solutions": [solution]},
    }
    if draw(st.booleans()):
        data["acknowledged_cautions"] = draw(
            st.lists(st.sampled_from(["anticoagulant", "antiplatelet", "risk_constant_pain"]))
        )
    if draw(st.integers(0, 3)) == 0:
        data["prior_24h"] = [
            {"agent": draw(st.sampled_from(AGENTS)), "mg": draw(st.integers(1, 400))}
        ]
    return data


def schema_plans() -> st.SearchStrategy[dict[str, Any]]:
    """Anything the published plan schema allows."""
    return from_schema(_clean(plan_json_schema(KB)))


WEIGHTS = st.sampled_from([45, 70, 84, 130])
HOSTILE_NUMBERS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(
        lambda m, e: Decimal(f"{m}E{e}"),
        st.integers(-(10**6), 10**6),
        st.integers(-(10**9), 10**9),
    ),
    st.integers(-(10**40), 10**40),
    st.floats(),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["1e-999999999", "9" * 5000, "NaN", "0.0000001", "1E+7"]),
)


@st.composite
def dose_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Dose requests: from the schema, plausible ones, and hostile numbers anywhere."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        schema = _clean(DoseRequest.model_json_schema())
        schema["$defs"]["SolutionDose"]["properties"]["agent"]["enum"] = AGENTS
        data: dict[str, Any] = draw(from_schema(schema))
        return data
    number = HOSTILE_NUMBERS if kind == 2 else st.decimals("0.1", "40", places=1)
    plain = sorted(
        {(la.id, p) for la in KB.injectates.local_anesthetics for p in la.marketed(False)}
    )
    strength = st.sampled_from(plain)
    solution = strength.flatmap(
        lambda ap: st.fixed_dictionaries(
            {
                "agent": st.just(ap[0]),
                "percent": st.one_of(st.just(ap[1]), number) if kind == 2 else st.just(ap[1]),
                "ml": number,
            }
        )
    )
    return {
        "weight_kg": draw(st.one_of(WEIGHTS, number) if kind == 2 else WEIGHTS),
        "solutions": draw(st.lists(solution, min_size=1, max_size=4)),
        "prior_24h": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"agent": st.sampled_from(AGENTS), "mg": number},
                    optional={"hours_ago": st.one_of(st.integers(0, 24), number)},
                ),
                max_size=3,
            )
        ),
    }


# --------------------------------------------------------------------------- oracles
def _active_bleeding(data: dict[str, Any], cls: str) -> bool:
    """An active medicine whose name is one of the value set's names, however spelled."""
    names = BLEEDING[cls]
    for m in data.get("medications") or []:
        if not isinstance(m, dict) or m.get("active", True) is not True:
            continue
        raw = str(m.get("name", "")).replace("™", " ").replace("℠", " ")
        text = unicodedata.normalize("NFKC", raw).casefold()
        words = "".join(c if c.isalnum() else " " for c in text).split()
        joined = " ".join(words)
        if any(f" {n} " in f" {joined} " for n in names):
            return True
    return False


def _positive_generator(data: dict[str, Any]) -> bool:
    """Any pain generator rule true on the recorded findings, whatever the regions."""
    facts = parse_assessment(data, KB).model_dump(mode="json")
    return any(evaluate(g.when, facts).value is True for g in KB.pathway.pain_generators)


# --------------------------------------------------------------------------- checks
def check_assessment(data: Any) -> str:
    """One assessment through parse + assess; the outcome ('invalid' or the verdict)."""
    try:
        a = parse_assessment(data, KB)
    except InvalidInput:
        return "invalid"
    rec = assess(a, KB, as_of=AS_OF)
    red = any((data.get("red_flags") or {}).get(k) is True for k in RED_FLAGS)
    if red:
        assert rec.verdict == "urgent_referral", rec.verdict
    if _positive_generator(data):
        assert rec.verdict != "tpi_appropriate"
    for cls in BLEEDING:
        if _active_bleeding(data, cls):
            assert cls in {c.code for c in rec.cautions}, (cls, data.get("medications"))
    return rec.verdict


def check_plan(data: Any) -> str:
    """One plan through parse + plan; anticoagulants always need their acknowledgement."""
    try:
        req = parse_plan_request(data, KB)
        plan = plan_from_request(req, KB, as_of=AS_OF)
    except InvalidInput:
        return "invalid"
    a = data["assessment"]
    for cls in BLEEDING:
        if _active_bleeding(a, cls) and plan.status not in ("refused",):
            assert cls in plan.acknowledgements.required, (cls, a.get("medications"))
            if cls not in (data.get("acknowledged_cautions") or []):
                assert plan.status != "ready"
    if plan.dose is not None and plan.dose.level == "exceeds":
        assert plan.status == "blocked"
    if any((a.get("red_flags") or {}).get(k) is True for k in RED_FLAGS):
        assert plan.status == "refused"
    return plan.status


def check_dose_case(data: Any) -> str:
    """One dose request through parse + check."""
    try:
        result = check_dose(parse_dose_request(data), KB)
    except InvalidInput:
        return "invalid"
    assert result.level in ("ok", "caution", "exceeds")
    return result.level


def timed(check: Callable[[Any], str], data: Any) -> tuple[str, float]:
    """Run one check and measure it (the caller decides what to do with the time)."""
    start = time.perf_counter()
    outcome = check(data)
    return outcome, time.perf_counter() - start


# --------------------------------------------------------------------------- cheap variants
def _random_spelling(rng: Random, name: str) -> str:
    """A decorated spelling, drawn with plain ``random`` (the long run's variants)."""
    word = rng.choice([name, name.upper(), name.title()])
    if rng.random() < 0.2:
        word = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)
    mark = rng.choice(["", "®", "™", "©"])
    tail = rng.choice(["", " 5 mg", "\u00a05mg bid", "\t20 MG daily", " 81", " oral tablet"])
    return f"{word}{mark}{tail}"


def assessment_variant(data: dict[str, Any], rng: Random) -> dict[str, Any]:
    """A copy of a generated assessment with one or two random changes of the kinds the
    properties are about (a bleeding-risk medicine, a positive finding, other regions)."""
    out = copy.deepcopy(data)
    for _ in range(rng.randint(1, 2)):
        kind = rng.randrange(4)
        if kind == 0:
            cls = rng.choice(sorted(BLEEDING))
            meds = list(out.get("medications") or [])
            meds.append({"name": _random_spelling(rng, rng.choice(BLEEDING[cls]))})
            out["medications"] = meds
        elif kind == 1:
            group, name = rng.choice(GENERATOR_FIELDS)
            out.setdefault("pain_generators", {}).setdefault(group, {})[name] = True
        elif kind == 2:
            out.setdefault("red_flags", {})[rng.choice(RED_FLAGS)] = rng.choice([True, False])
        else:
            out["regions"] = rng.sample(REGIONS, rng.randint(1, 3))
    return out


def plan_variant(data: dict[str, Any], rng: Random) -> dict[str, Any]:
    """A generated plan with its assessment varied and the acknowledgements redrawn."""
    out = dict(data)
    out["assessment"] = assessment_variant(data["assessment"], rng)
    out["acknowledged_cautions"] = rng.sample(
        ["anticoagulant", "antiplatelet", "medication_unrecognised", "risk_constant_pain"],
        rng.randint(0, 2),
    )
    return out


_HOSTILE = ["1e-999999999", "9" * 500, "NaN", True, 10**30, -1, 0, "0.0000001", 1e300, "5"]


def dose_variant(data: dict[str, Any], rng: Random) -> dict[str, Any]:
    """A generated dose request with one number replaced by a hostile or plausible one."""
    out = copy.deepcopy(data)
    value = rng.choice([*_HOSTILE, rng.uniform(0.1, 40), rng.randint(1, 30)])
    sols = out.get("solutions")
    if isinstance(sols, list) and sols and isinstance(sols[0], dict) and rng.random() < 0.7:
        sols[rng.randrange(len(sols))][rng.choice(["ml", "percent"])] = value
    else:
        out["weight_kg"] = value
    return out
