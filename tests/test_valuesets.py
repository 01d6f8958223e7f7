"""Value sets: EHR code lists as data, each naming its code system edition and source."""

from __future__ import annotations

import json
from typing import Any

import pytest

from triggerpath.errors import KnowledgeError
from triggerpath.knowledge import Knowledge, load_knowledge
from triggerpath.knowledge import loader as loader_mod
from triggerpath.knowledge.valuesets import REQUIRED_IDS, ValueSetCatalog

from .cds_helpers import BULK, CPT, ICD10, LOINC, RXNORM, SNOMED, synthea_files


def test_every_system_names_its_edition_and_every_value_set_its_source(kb: Knowledge) -> None:
    cat = kb.valuesets
    assert {s.id for s in cat.systems} == {"icd10cm", "snomed", "loinc", "rxnorm", "cpt"}
    assert all(s.version and s.url.startswith("http") for s in cat.systems)
    assert set(REQUIRED_IDS) <= {v.id for v in cat.valuesets}
    for vs in cat.valuesets:
        assert vs.statement_ids or vs.references, vs.id


@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        # ICD-10-CM 2025 tabular list: M54.1x radiculopathy, M54.3x sciatica, M54.5x low back pain
        (ICD10, "M54.16", "radiculopathy"),
        (ICD10, "M5416", "radiculopathy"),  # dots are optional in ICD-10-CM codes
        (ICD10, "m54.50", "low_back_pain"),
        (ICD10, "M54.31", "sciatica"),
        (ICD10, "M79.18", "myofascial_pain"),
        (ICD10, "M62.830", "muscle_spasm_back"),
        (ICD10, "M54.6", "thoracic_spine_pain"),
        (ICD10, "M54.2", "neck_pain"),
        (ICD10, "M48.062", "spinal_stenosis"),
        (ICD10, "M51.26", "disc_herniation"),
        (ICD10, "M79.7", "fibromyalgia"),
        (ICD10, "S13.4XXA", "whiplash"),
        (ICD10, "Z33.1", "pregnancy"),
        (ICD10, "O26.891", "pregnancy"),
        (ICD10, "D68.32", "bleeding_disorder"),
        (SNOMED, "278860009", "low_back_pain"),  # chronic low back pain (Synthea bulk)
        (SNOMED, "39848009", "whiplash"),
        (LOINC, "72514-3", "pain_severity"),
        (LOINC, "29463-7", "body_weight"),
        (LOINC, "82810-3", "pregnancy_status"),
        (RXNORM, "855332", "anticoagulant"),  # Warfarin Sodium 5 MG Oral Tablet
        (RXNORM, "11289", "anticoagulant"),  # warfarin ingredient
        (RXNORM, "309362", "antiplatelet"),  # Clopidogrel 75 MG Oral Tablet
        (RXNORM, "6387", "local_anesthetic"),  # lidocaine ingredient
        (CPT, "20552", "tpi_procedure"),
        (CPT, "20553", "tpi_procedure"),
    ],
)
def test_codes_resolve_to_their_value_set(
    kb: Knowledge, system: str, code: str, expected: str
) -> None:
    assert expected in kb.valuesets.match(system, code)


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (ICD10, "D68.51"),  # factor V Leiden: a thrombophilia, not a bleeding disorder
        (ICD10, "D68.62"),  # lupus anticoagulant syndrome: thrombophilia
        (ICD10, "M54.0"),  # panniculitis of neck and back: not low back pain
        (RXNORM, "1804799"),  # alteplase: thrombolytic, not an oral anticoagulant order
        (CPT, "20550"),  # tendon sheath injection, not a TPI
        ("http://example.org/unknown", "20552"),
    ],
)
def test_near_misses_do_not_match(kb: Knowledge, system: str, code: str) -> None:
    hits = kb.valuesets.match(system, code)
    assert not (
        {"bleeding_disorder", "low_back_pain", "anticoagulant", "tpi_procedure"} & set(hits)
    )


def test_text_fallback_matches_word_starts_only(kb: Knowledge) -> None:
    vs = kb.valuesets
    assert "anticoagulant" in vs.match_text("Warfarin Sodium 5 MG Oral Tablet")
    assert "local_anesthetic" in vs.match_text("Xylocaine-MPF 1% injection")
    # the allergen value set includes the drug value set, names too
    assert "local_anesthetic_allergy" in vs.match_text("lidocaine")
    assert vs.match_text("Acetaminophen 325 MG Oral Tablet") == ()
    assert "antiplatelet" not in vs.match_text("hydroxychloroquine")


def test_drug_value_sets_use_the_pathway_medication_classes(kb: Knowledge) -> None:
    classes = {c.id: set(c.members) for c in kb.pathway.medication_classes}
    for vs in kb.valuesets.valuesets:
        if vs.drug_class:
            assert vs.drug_class in classes
            # every brand or generic name the pathway knows is also a text fallback here
            assert classes[vs.drug_class] <= set(vs.names), vs.id


def test_finding_paths_are_assessment_fields(kb: Knowledge) -> None:
    from triggerpath.domain.assessment import Assessment
    from triggerpath.knowledge.loader import field_exists

    paths = {p for vs in kb.valuesets.valuesets for p in vs.sets}
    assert "pain_generators.radicular.dermatomal_pain" in paths
    assert all(field_exists(Assessment, p) for p in paths)


def _broken(monkeypatch: pytest.MonkeyPatch, change: Any) -> KnowledgeError:
    real = loader_mod._read

    def fake(name: str) -> Any:
        data = real(name)
        if name == "valuesets.yaml":
            data = json.loads(json.dumps(data))
            change(data)
        return data

    monkeypatch.setattr(loader_mod, "_read", fake)
    load_knowledge.cache_clear()
    try:
        with pytest.raises(KnowledgeError) as info:
            load_knowledge()
    finally:
        monkeypatch.undo()
        load_knowledge.cache_clear()
    return info.value


def test_broken_value_sets_are_reported_with_their_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    def change(data: dict[str, Any]) -> None:
        vs = {v["id"]: v for v in data["valuesets"]}
        vs["radiculopathy"]["sets"] = ["pain_generators.radicular.no_such_finding"]
        vs["anticoagulant"]["drug_class"] = "blood_thinner"
        vs["sciatica"]["include"] = [
            {"system": "icd9", "codes": [{"code": "724.3", "display": "x"}]}
        ]
        data["valuesets"] = [v for v in data["valuesets"] if v["id"] != "tpi_procedure"]

    err = _broken(monkeypatch, change)
    text = str(err)
    assert "valuesets.yaml:valuesets[radiculopathy].sets" in text
    assert "unknown medication class 'blood_thinner'" in text
    assert "unknown code system 'icd9'" in text
    assert "value set 'tpi_procedure' is required" in text


def test_an_include_is_either_codes_or_a_value_set() -> None:
    base = {
        "systems": [
            {"id": "cpt", "url": CPT, "name": "CPT", "version": "2025", "publisher": "AMA"}
        ],
        "valuesets": [
            {
                "id": "x",
                "name": "x",
                "description": "x",
                "resources": ["Procedure"],
                "include": [{"system": "cpt", "valueset": "y"}],
                "statement_ids": ["S003.07"],
            }
        ],
    }
    with pytest.raises(ValueError, match="either 'system'"):
        ValueSetCatalog.model_validate(base)


@pytest.mark.shared_data
def test_the_synthea_drug_codes_are_covered(kb: Knowledge) -> None:
    """Every anticoagulant/antiplatelet RxNorm code in the Synthea bundles is in a value set."""
    seen: dict[str, str] = {}
    for path in synthea_files():
        for e in json.loads(path.read_bytes())["entry"]:
            r = e["resource"]
            if r["resourceType"] == "MedicationRequest":
                for c in r.get("medicationCodeableConcept", {}).get("coding", []):
                    seen[c["code"]] = c.get("display", "")
    names = {"warfarin", "clopidogrel", "heparin", "aspirin", "apixaban", "rivaroxaban"}
    drugs = {code: d for code, d in seen.items() if any(n in d.lower() for n in names)}
    assert {"855332", "309362"} <= set(drugs)
    for code, display in drugs.items():
        hits = kb.valuesets.match(RXNORM, code)
        assert {"anticoagulant", "antiplatelet"} & set(hits), (code, display)


@pytest.mark.shared_data
def test_the_bulk_export_latex_allergy_is_covered(kb: Knowledge) -> None:
    lines = (BULK / "AllergyIntolerance.000.ndjson").read_text().splitlines()
    latex = [json.loads(x) for x in lines if "Latex" in x]
    assert latex
    coding = latex[0]["code"]["coding"][0]
    assert "latex_allergy" in kb.valuesets.match(coding["system"], coding["code"])
