"""Issue 12 §2: an anticoagulant or antiplatelet is recognised whatever the spelling.

A missed anticoagulant means deep needling in an anticoagulated patient without the
prescriber's agreement (S002.32: review blood thinners before every session; Narouze
et al., Reg Anesth Pain Med 2018;43:225-62). Each spelling below is one a real record
contains; the base case is a fully screened patient whose plan is otherwise ``ready``.
"""

from __future__ import annotations

from typing import Any

import pytest

from triggerpath.domain.engine import assess
from triggerpath.domain.medications import normalise, recognise
from triggerpath.domain.planning import parse_plan_request, plan_from_request
from triggerpath.domain.recommendation import Recommendation
from triggerpath.domain.validation import parse_assessment
from triggerpath.knowledge import Knowledge

from .conftest import AS_OF


def run(data: dict[str, Any], kb: Knowledge) -> Recommendation:
    return assess(parse_assessment(data, kb), kb, as_of=AS_OF)


def plan_status(data: dict[str, Any], kb: Knowledge, ack: list[str] | None = None) -> str:
    req = parse_plan_request(
        {
            "assessment": data,
            "targets": [{"muscle": "quadratus_lumborum", "side": "right", "sites": 2}],
            "injectate": {"solutions": [{"agent": "lidocaine", "percent": 0.5}]},
            "acknowledged_cautions": ack or [],
        },
        kb,
    )
    return plan_from_request(req, kb, as_of=AS_OF).status


ANTICOAGULANT_SPELLINGS = [
    "Eliquis® 5 mg",  # the example
    "ELIQUIS\u00a05MG BID",  # non-breaking space, capitals, frequency
    "\uff25\uff4c\uff49\uff51\uff55\uff49\uff53",  # full-width letters (NFKC)
    "apixaban (Eliquis) 5 mg tab",
    "Xarelto™ 20mg daily",  # NFKC turns ™ into "TM": removed before and after
    "eliquis5mg",  # strength glued to the name
    "Eli-quis",
    "warfarin sodium 5 MG Oral Tablet",
    "Coumadin 2.5mg po qhs",
    "PRADAXA 150 MG",
    "dabigatran etexilate 110 mg",
    "Savaysa(edoxaban)60mg",
    "Lixiana 30 mg",
    "Lovenox 40mg/0.4mL SC",
    "enoxaparin sodium injection",
    "Fragmin\t5000 IU",
    "heparin 5,000 units subcut",
    "fondaparinux 2.5 mg",
    "LMWH prophylaxis",
    "DOAC",
]
ANTIPLATELET_SPELLINGS = [
    "Brilinta® 90 mg b.i.d.",
    "ticagrelor90mg",
    "Effient 10 mg",
    "prasugrel",
    "Plavix 75",
    "clopidogrel+aspirin",
    "Aspirin/Dipyridamole ER",
    "Aggrenox 25/200",
    "ASA 81",
    "EC-ASA 81mg",
    "acetylsalicylic acid 100 mg",
    "Acetylsalicylic-acid 100",
    "Pletal (cilostazol) 100 mg",
    "dipyridamole",
]


@pytest.mark.parametrize("name", ANTICOAGULANT_SPELLINGS)
def test_anticoagulant_in_any_spelling_needs_acknowledgement(
    clean: dict[str, Any], kb: Knowledge, name: str
) -> None:
    clean["medications"] = [{"name": name}]
    rec = run(clean, kb)
    assert "anticoagulant" in {c.code for c in rec.cautions}, name
    assert plan_status(clean, kb) == "needs_acknowledgement"
    assert plan_status(clean, kb, ["anticoagulant"]) == "ready"


@pytest.mark.parametrize("name", ANTIPLATELET_SPELLINGS)
def test_antiplatelet_in_any_spelling_needs_acknowledgement(
    clean: dict[str, Any], kb: Knowledge, name: str
) -> None:
    clean["medications"] = [{"name": name}]
    assert "antiplatelet" in {c.code for c in run(clean, kb).cautions}, name
    assert plan_status(clean, kb) == "needs_acknowledgement"


def test_every_name_of_the_value_sets_is_recognised_in_decorated_forms(kb: Knowledge) -> None:
    for vs in kb.valuesets.valuesets:
        if vs.drug_class not in ("anticoagulant", "antiplatelet"):
            continue
        for name in vs.names:
            for form in (name, name.upper(), f"{name.title()}® 5 mg", f" {name}\u2009tab bid "):
                assert vs.drug_class in recognise(form, kb).classes, form


@pytest.mark.parametrize(
    ("code", "cls"),
    [("1364430", "anticoagulant"), ("11289", "anticoagulant"), ("32968", "antiplatelet")],
)
def test_rxnorm_code_wins_over_the_name(
    clean: dict[str, Any], kb: Knowledge, code: str, cls: str
) -> None:
    """RxNorm 1364430 apixaban, 11289 warfarin, 32968 clopidogrel (NLM RxNav)."""
    clean["medications"] = [{"name": "home medication 1", "rxnorm": code}]
    rec = run(clean, kb)
    assert cls in {c.code for c in rec.cautions}
    assert "medication_unrecognised" not in {c.code for c in rec.cautions}


def test_a_mis_classed_anticoagulant_still_counts(clean: dict[str, Any], kb: Knowledge) -> None:
    clean["medications"] = [{"name": "warfarin 5 mg", "drug_class": "nsaid"}]
    rec = run(clean, kb)
    assert "anticoagulant" in {c.code for c in rec.cautions}
    assert "medications[0].drug_class" in {n.field for n in rec.needs}


@pytest.mark.parametrize("name", ["Zyntrix 10 mg", "blood thinner (name unknown)", "xyz"])
def test_an_unrecognised_active_medicine_is_never_harmless(
    clean: dict[str, Any], kb: Knowledge, name: str
) -> None:
    clean["medications"] = [{"name": "ibuprofen 400 mg"}, {"name": name}]
    rec = run(clean, kb)
    need = {n.field: n for n in rec.needs}["medications[1].name"]
    assert "anticoagulant or antiplatelet" in need.why and name in need.why
    assert "medication_unrecognised" in {c.code for c in rec.cautions}
    assert plan_status(clean, kb) == "needs_acknowledgement"


def test_stopped_or_classed_unknown_medicines_raise_nothing(
    clean: dict[str, Any], kb: Knowledge
) -> None:
    clean["medications"] = [
        {"name": "Zyntrix 10 mg", "active": False},
        {"name": "our formulary drug X", "drug_class": "other"},
        {"name": "metformin 500 mg bid"},
    ]
    rec = run(clean, kb)
    assert not {"medication_unrecognised", "anticoagulant"} & {c.code for c in rec.cautions}
    assert plan_status(clean, kb) == "ready"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Eliquis® 5 mg", "eliquis"),
        ("Xarelto™", "xarelto"),
        ("ASPIRIN\u00a081\u00a0MG EC TAB", "aspirin"),
        ("Heparin 5,000 units", "heparin"),
    ],
)
def test_normalise_drops_marks_case_and_dose_text(text: str, words: str) -> None:
    assert normalise(text) == words


def test_no_prefix_false_positives(kb: Knowledge) -> None:
    """Whole words only: mesalamine (Asacol) is not aspirin (ASA)."""
    assert recognise("Asacol 400 mg", kb).classes == ()
    assert recognise("hydroxychloroquine", kb).classes == ()
