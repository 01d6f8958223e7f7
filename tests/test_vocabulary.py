"""The input vocabulary (knowledge/data/inputs.yaml) is the assessment model's field paths.

The knowledge base checks its rules' field paths against this file instead of importing the
domain (docs/architecture.md); these tests keep the file and the model in step.
"""

from __future__ import annotations

import pytest

from triggerpath.domain.assessment import Assessment, TriggerPointFinding
from triggerpath.domain.vocabulary import assessment_vocabulary, render_vocabulary
from triggerpath.knowledge import Knowledge
from triggerpath.knowledge.conditions import paths_in
from triggerpath.knowledge.vocabulary import field_exists, input_paths


def test_every_vocabulary_path_is_a_field_of_the_model(kb: Knowledge) -> None:
    """A field renamed or removed in domain/assessment.py must leave inputs.yaml too.

    (A field added to the model may wait: the loader names the missing path, and how to
    regenerate, the first time a rule reads it.)
    """
    stale = [p for p in kb.inputs.assessment if not field_exists(Assessment, p)]
    stale += [p for p in kb.inputs.trigger_point if not field_exists(TriggerPointFinding, p)]
    assert not stale, f"not in the model any more (run scripts/gen-vocabulary): {stale}"


def test_every_path_a_rule_reads_is_a_field_of_the_model(kb: Knowledge) -> None:
    """The safety property itself, checked against the model rather than the copy."""
    p, rev = kb.pathway, kb.instruments.reevaluation
    conditions = [
        *(r.when for r in p.red_flags),
        *(g.when for g in p.pain_generators),
        *(c.when for c in p.contraindications),
        *(c.when for c in p.cautions),
        *(c.when for c in p.supporting_indications),
        *(c.when for c in [*rev.technical_review, *rev.perpetuating_factors]),
        *(c.when for c in rev.failure_risk_factors),
        *(d.when for d in rev.differential),
    ]
    paths = {path for cond in conditions if cond is not None for path in paths_in(cond)}
    paths |= {path for vs in kb.valuesets.valuesets for path in vs.sets}
    assert "pain.duration_weeks" in paths
    assert sorted(x for x in paths if not field_exists(Assessment, x)) == []
    tpc = p.trigger_point_criteria
    tp_paths = [*paths_in(tpc.required), *tpc.confirmatory, *tpc.supportive]
    assert sorted(x for x in tp_paths if not field_exists(TriggerPointFinding, x)) == []


def test_the_generator_writes_the_models_paths() -> None:
    text = render_vocabulary()
    assert text.startswith("# Generated from triggerpath.domain.assessment")
    vocab = assessment_vocabulary()
    assert all(f"  - {path}\n" in text for path in vocab["assessment"] + vocab["trigger_point"])
    assert vocab["assessment"] == input_paths(Assessment)


def test_loaded_vocabulary_is_a_generated_one(kb: Knowledge) -> None:
    """inputs.yaml came from the generator: same order, nothing hand-added."""
    current = assessment_vocabulary()["assessment"]
    assert [p for p in current if p in kb.inputs.assessment] == kb.inputs.assessment


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
