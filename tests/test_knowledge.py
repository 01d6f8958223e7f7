"""The knowledge base: complete, cross-referenced, and every source statement used."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from triggerpath.errors import KnowledgeError
from triggerpath.knowledge import Knowledge, load_knowledge
from triggerpath.knowledge import loader as loader_mod
from triggerpath.knowledge.loader import cited_ids

from .conftest import SHARED

REQUIRED_MUSCLES = {
    "upper_trapezius",
    "middle_trapezius",
    "lower_trapezius",
    "rhomboid_major",
    "rhomboid_minor",
    "levator_scapulae",
    "serratus_posterior_superior",
    "iliocostalis_lumborum",
    "longissimus_thoracis",
    "multifidus_lumbar",
    "quadratus_lumborum",
    "gluteus_medius",
    "latissimus_dorsi",
    "gluteus_minimus",
    "piriformis",
    "infraspinatus",
}


def all_statement_ids() -> set[str]:
    # S000.01-S000.34, S001.01-S001.11, S002.01-S002.35, S003.01-S003.12, S004.01-S004.09
    counts = {"000": 34, "001": 11, "002": 35, "003": 12, "004": 9}
    return {f"S{seed}.{i:02d}" for seed, n in counts.items() for i in range(1, n + 1)}


def test_catalogue_has_every_statement_once(kb: Knowledge) -> None:
    ids = [s.id for s in kb.evidence.statements]
    assert len(ids) == len(set(ids)) == 101
    assert set(ids) == all_statement_ids()


@pytest.mark.shared_data
def test_catalogue_matches_the_shared_spec(kb: Knowledge) -> None:
    spec = yaml.safe_load((SHARED / "spec" / "statements.yaml").read_text())
    by_id = {s["id"]: s for s in spec["statements"]}
    assert set(by_id) == set(kb.statements)
    for sid, st in by_id.items():
        ours = kb.statements[sid]
        assert ours.kind == st["kind"], sid
        assert ours.topic == st["topic"], sid
        assert ours.summary.strip() != st["claim"].strip(), f"{sid} must be paraphrased, not copied"
        for key, value in (st.get("values") or {}).items():
            assert ours.values.get(key) == pytest.approx(value), f"{sid}.{key}"
    assert {c["topic"] for c in spec["conflicts"]} == {c.id for c in kb.evidence.conflicts}


def test_every_statement_is_used_by_a_rule_or_item(kb: Knowledge) -> None:
    used = {sid for root in (kb.anatomy, kb.pathway) for _, sid in cited_ids(root)}
    missing = sorted(all_statement_ids() - used)
    assert not missing, f"statements not used by any knowledge item: {missing}"


def test_required_back_muscles_are_described(kb: Knowledge) -> None:
    assert set(kb.muscles) >= REQUIRED_MUSCLES
    for m in kb.anatomy.muscles:
        assert m.statement_ids or m.references, m.id
        assert m.volume_ml_min <= m.volume_ml_max


def test_quadratus_lumborum_needle_matches_source(kb: Knowledge) -> None:
    # S000.16: 60-90 mm, 28 G needles for QL
    n = kb.muscles["quadratus_lumborum"].needle
    assert (n.length_mm_min, n.length_mm_max) == (60, 90)
    assert n.gauge_min <= 28 <= n.gauge_max
    assert "S000.16" in kb.muscles["quadratus_lumborum"].statement_ids


def test_hazards_over_thorax_and_neck(kb: Knowledge) -> None:
    # S000.30 / S002.21: pneumothorax over the thorax; S002.24: cervical nerve roots
    for mid in ("rhomboid_major", "rhomboid_minor", "serratus_posterior_superior"):
        assert "pleura" in kb.muscles[mid].hazards, mid
        assert kb.muscles[mid].guidance != "palpation", mid
    assert "cervical_nerve_roots" in kb.muscles["levator_scapulae"].hazards


def test_conflicts_keep_both_sides(kb: Knowledge) -> None:
    topics = {c.id: c for c in kb.evidence.conflicts}
    assert {"first-line", "lidocaine-strength", "needle-gauge"} <= set(topics)
    lido = {p.statement_id for p in topics["lidocaine-strength"].positions}
    assert lido == {"S000.15", "S003.07", "S002.18"}


def test_duration_phases_and_course_limits(kb: Knowledge) -> None:
    # S000.20: 1-4 treatments acute/subacute, 2-8 chronic
    phases = {p.id: p for p in kb.pathway.duration_phases}
    assert (phases["acute"].sessions_min, phases["acute"].sessions_max) == (1, 4)
    assert (phases["subacute"].sessions_min, phases["subacute"].sessions_max) == (1, 4)
    assert (phases["chronic"].sessions_min, phases["chronic"].sessions_max) == (2, 8)
    assert phases["acute"].max_weeks == 6 and phases["subacute"].max_weeks == 12


def test_version_is_carried(kb: Knowledge) -> None:
    assert re.match(r"^\d{4}\.\d{1,2}\.\d+$", kb.version)


def _broken_reader(real: Any, patch: dict[str, Any]) -> Any:
    def read(name: str) -> Any:
        data = real(name)
        if name in patch:
            return patch[name](data)
        return data

    return read


def test_broken_knowledge_lists_every_problem_with_its_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = loader_mod._read

    def break_pathway(data: dict[str, Any]) -> dict[str, Any]:
        data["red_flags"][0]["when"] = "red_flags.no_such_field"
        data["contraindications"][0]["statement_ids"] = ["S999.99"]
        data["pitfalls"][0]["surprise"] = 1
        return data

    def break_anatomy(data: dict[str, Any]) -> dict[str, Any]:
        data["muscles"][0]["hazards"] = ["no_such_hazard"]
        return data

    monkeypatch.setattr(
        loader_mod,
        "_read",
        _broken_reader(real, {"pathway.yaml": break_pathway, "anatomy.yaml": break_anatomy}),
    )
    load_knowledge.cache_clear()
    try:
        with pytest.raises(KnowledgeError) as exc:
            load_knowledge()
        text = str(exc.value)
        assert "pathway.yaml:pitfalls.0.surprise" in text  # schema problems first, all of them
        monkeypatch.setattr(
            loader_mod,
            "_read",
            _broken_reader(
                real,
                {
                    "pathway.yaml": lambda d: (
                        d["red_flags"][0].update(when="red_flags.no_such_field") or d
                    ),
                    "anatomy.yaml": break_anatomy,
                },
            ),
        )
        load_knowledge.cache_clear()
        with pytest.raises(KnowledgeError) as exc2:
            load_knowledge()
        problems = {p.field: p.reason for p in exc2.value.problems}
        assert any("red_flags[cauda_equina].when" in f for f in problems)
        assert any("no_such_hazard" in r for r in problems.values())
        assert len(exc2.value.problems) >= 2
    finally:
        load_knowledge.cache_clear()


def test_a_lookup_by_an_unknown_id_names_it(kb: Knowledge) -> None:
    assert kb.instruments.instrument("odi").id == "odi"
    with pytest.raises(KeyError, match="'no_such_instrument'"):
        kb.instruments.instrument("no_such_instrument")
    assert kb.injectates.steroid("no_such_steroid") is None
