"""The assessment's field paths, for ``knowledge/data/inputs.yaml``.

The knowledge base names assessment fields in its rules but sits below the domain, so it
checks them against a copy of the paths kept as data (:mod:`triggerpath.knowledge.vocabulary`).
This is the one place that copy is made from the model; ``scripts/gen-vocabulary`` writes
it and ``tests/test_vocabulary.py`` checks that it names only fields the model has.
"""

from __future__ import annotations

from triggerpath.domain.assessment import Assessment, TriggerPointFinding
from triggerpath.knowledge.vocabulary import input_paths


def assessment_vocabulary() -> dict[str, list[str]]:
    """The content of ``inputs.yaml``: the assessment's and a trigger point's field paths."""
    return {
        "assessment": input_paths(Assessment),
        "trigger_point": input_paths(TriggerPointFinding),
    }


def render_vocabulary() -> str:
    """``inputs.yaml`` as text, with the header that says where it comes from."""
    lines = [
        "# Generated from triggerpath.domain.assessment by scripts/gen-vocabulary: do not edit.",
        "# The assessment fields the knowledge base may name (knowledge/vocabulary.py).",
    ]
    for key, paths in assessment_vocabulary().items():
        lines.append(f"{key}:")
        lines.extend(f"  - {p}" for p in paths)
    return "\n".join(lines) + "\n"
