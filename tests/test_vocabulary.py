"""The input vocabulary (knowledge/data/inputs.yaml) is the assessment model's field paths.

The knowledge base checks its rules' field paths against this file instead of importing the
domain (docs/architecture.md); these tests keep the file and the model in step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerpath.domain.assessment import Assessment, TriggerPointFinding
from triggerpath.domain.vocabulary import assessment_vocabulary, render_vocabulary
from triggerpath.knowledge import Knowledge
from triggerpath.knowledge.vocabulary import field_exists, input_paths

DATA = Path(__file__).resolve().parents[1] / "src/triggerpath/knowledge/data/inputs.yaml"


def test_inputs_yaml_is_current() -> None:
    assert DATA.read_text(encoding="utf-8") == render_vocabulary(), (
        "knowledge/data/inputs.yaml is out of date: run scripts/gen-vocabulary"
    )


def test_loaded_vocabulary_is_the_models_paths(kb: Knowledge) -> None:
    vocab = assessment_vocabulary()
    assert kb.inputs.assessment == vocab["assessment"]
    assert kb.inputs.trigger_point == vocab["trigger_point"]
    assert all(field_exists(Assessment, p) for p in kb.inputs.assessment)
    assert all(field_exists(TriggerPointFinding, p) for p in kb.inputs.trigger_point)


@pytest.mark.parametrize(
    ("path", "known"),
    [
        ("pain.duration_weeks", True),
        ("trigger_points[].taut_band", True),
        ("trigger_points", True),  # a list named whole, as the last part
        ("trigger_points[]", True),
        ("trigger_points.taut_band", False),  # a list crossed without []
        ("pain.duration_weeks[]", False),  # [] on a field that is not a list
        ("pain.no_such_field", False),
        ("pain.duration_weeks.days", False),  # below a plain value
    ],
)
def test_vocabulary_reads_paths_as_field_exists_does(kb: Knowledge, path: str, known: bool) -> None:
    assert kb.inputs.has_assessment_field(path) is known
    assert field_exists(Assessment, path) is known


def test_input_paths_of_a_small_model() -> None:
    from pydantic import BaseModel

    class Leaf(BaseModel):
        x: int

    class Root(BaseModel):
        a: Leaf | None = None
        b: list[Leaf] = []
        c: list[int] = []

    assert input_paths(Root) == ["a", "a.x", "b", "b[]", "b[].x", "c", "c[]"]
