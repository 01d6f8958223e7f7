"""The web forms and the stored-records-to-course mapping, without a browser."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from triggerpath.adapters import database
from triggerpath.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork
from triggerpath.bootstrap import uow_factory
from triggerpath.domain.assessment import Assessment
from triggerpath.domain.course import evaluate_course, parse_episode
from triggerpath.entrypoints.web import demo, forms
from triggerpath.entrypoints.web.chart import trend_svg
from triggerpath.knowledge import Knowledge
from triggerpath.services import records
from triggerpath.services.audit import AuditNote
from triggerpath.services.episodes import course_episode, load_bundle, parse_technique, trend
from triggerpath.services.model import Window

from ..conftest import AS_OF, EXAMPLES, ROOT

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.json") if p.stem != "expected")


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_survives_the_form_round_trip(name: str, kb: Knowledge) -> None:
    """Shown in the form and posted back unchanged, an assessment parses to itself."""
    a = Assessment.model_validate(json.loads((EXAMPLES / f"{name}.json").read_text()))
    values = forms.assessment_values(a, AS_OF)
    parsed, as_of, result = forms.parse_assessment_form(values, kb)
    assert result.problems == []
    assert parsed == a
    assert as_of == AS_OF


def _clean_values(kb: Knowledge) -> dict[str, Any]:
    a = Assessment.model_validate(json.loads((EXAMPLES / "ql_chronic_low_back.json").read_text()))
    return dict(forms.assessment_values(a, AS_OF))


def test_problems_name_the_form_field_that_was_typed(kb: Knowledge) -> None:
    values = _clean_values(kb)
    values["patient.age_years"] = "fifty"
    values["pain.nrs"] = "11"
    values["patient.weight_kg"] = "72kg"
    parsed, _, result = forms.parse_assessment_form(values, kb)
    assert parsed is None
    errors = result.errors()
    assert errors["patient.age_years"] == ["enter a whole number"]
    assert errors["patient.weight_kg"] == ["enter a number"]
    assert "pain.nrs" in errors and "10" in errors["pain.nrs"][0]


def test_trigger_point_problems_keep_the_rows_own_index(kb: Knowledge) -> None:
    """Rows are numbered by the page (blank or removed rows leave gaps): problems must point at
    the row the clinician sees, not at the engine's list index."""
    values = _clean_values(kb)
    row = {k: v for k, v in values.items() if k.startswith("trigger_points[0]")}
    values = {k: v for k, v in values.items() if not k.startswith("trigger_points[")}
    values.update({k.replace("[0]", "[4]"): v for k, v in row.items()})
    values["trigger_points[2].muscle"] = ""  # a blank row before it
    values["trigger_points[4].muscle"] = "gluteus_maximus"  # not in the knowledge base
    _, _, result = forms.parse_assessment_form(values, kb)
    assert "trigger_points[4].muscle" in result.errors()


def test_male_and_pregnant_is_refused_beside_the_pregnancy_field(kb: Knowledge) -> None:
    values = _clean_values(kb)
    values["patient.sex"] = "male"
    values["patient.pregnant"] = "yes"
    _, _, result = forms.parse_assessment_form(values, kb)
    assert "patient.pregnant" in result.errors()


def test_unexamined_is_null_and_review_not_done_is_null(kb: Knowledge) -> None:
    values = _clean_values(kb)
    values["red_flags.cauda_equina"] = "unknown"
    del values["medications.reviewed"]
    del values["conservative_care.recorded"]
    parsed, _, _ = forms.parse_assessment_form(values, kb)
    assert parsed is not None
    assert parsed.red_flags.cauda_equina is None
    assert parsed.medications is None and parsed.conservative_care is None


def test_technique_line_round_trip() -> None:
    details = {"guidance": "ultrasound", "needle": "27 G, 38 mm", "aspiration": "negative"}
    note = forms.technique_line(details) + "\nPatient tolerated it well."
    assert parse_technique(note) == (details, "Patient tolerated it well.")
    assert parse_technique("free text only") == ({}, "free text only")


def test_demo_course_from_stored_records_matches_the_example_file(
    kb: Knowledge, tmp_path: Path
) -> None:
    """The failing low-back course, stored as sessions and follow-up outcomes by the demo
    seeder and read back, is evaluated exactly as the example episode file is."""
    engine = database.make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    database.upgrade(engine)
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    created = demo.seed(
        uow_factory(engine), kb, ROOT / "examples", today=AS_OF, now=now, development=True
    )
    assert created[0].startswith("DEMO-001")
    with UnitOfWork(engine) as uow:
        patient = uow.records.mrn_owner("DEMO-001")
        assert patient is not None
        episodes, _ = records.list_(uow, AuditNote(), "episode", Window(), parent_id=patient)
        bundle = load_bundle(uow, AuditNote(), episodes[0].id)
    episode = course_episode(bundle, kb)
    assert episode is not None
    stored = evaluate_course(episode, kb, as_of=AS_OF)
    data = json.loads((ROOT / "examples" / "courses" / "failing_low_back.json").read_text())
    direct = evaluate_course(parse_episode(data, kb, as_of=AS_OF), kb, as_of=AS_OF)
    assert stored.response.classification == direct.response.classification == "non_responder"
    assert [s.pre_nrs for s in stored.sessions] == [s.pre_nrs for s in direct.sessions]
    assert [s.post_nrs for s in stored.sessions] == [s.post_nrs for s in direct.sessions]
    assert [s.response for s in stored.sessions] == [s.response for s in direct.sessions]
    assert stored.reevaluation is not None
    tech = {c.id: c.status for c in stored.reevaluation.technical_review}
    assert tech["localisation"] == "flagged"  # no twitch recorded at either session
    # seeding twice creates nothing more
    assert (
        demo.seed(
            uow_factory(engine), kb, ROOT / "examples", today=AS_OF, now=now, development=True
        )
        == []
    )
    svg = trend_svg(trend(bundle))
    assert svg.count('class="session"') == 2 and "series-nrs" in svg and "series-odi" in svg
    engine.dispose()


def test_demo_data_is_refused_outside_development(kb: Knowledge, tmp_path: Path) -> None:
    from triggerpath.errors import InvalidInput

    engine = database.make_engine(f"sqlite:///{tmp_path / 'prod.db'}")
    database.upgrade(engine)
    with pytest.raises(InvalidInput, match="development only"):
        demo.seed(
            uow_factory(engine),
            kb,
            ROOT / "examples",
            today=AS_OF,
            now=datetime(2026, 11, 21, tzinfo=UTC),
            development=False,
        )
    engine.dispose()
