"""Load the knowledge base from the package's data files and check it whole.

Loading is the only I/O in the knowledge package. It validates each file
against its schema, then checks the cross-references (statement ids, hazard
and exercise ids, the input fields that rules read). All problems are
collected and raised together in one :class:`KnowledgeError` with their paths,
so a curator fixes a data file in one pass::

    data/*.yaml ─> FILES[name].model_validate ─> Knowledge ─> check_references
                                                   ├─ ids, citations, muscle links (here)
                                                   ├─ pathway fields  ─> inputs.yaml vocabulary
                                                   ├─ check_instruments  (instruments.py)
                                                   ├─ check_injectates   (injectates.py)
                                                   └─ check_valuesets    (valuesets.py)

The per-file checks take only what they check (a model, the medication classes, the
vocabulary), never this module's :class:`Knowledge`, so none of them imports the loader back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel

from triggerpath.errors import FieldProblem, KnowledgeError
from triggerpath.knowledge import cache as knowledge_cache
from triggerpath.knowledge.conditions import paths_in
from triggerpath.knowledge.datafile import read_yaml, validated
from triggerpath.knowledge.injectates import Injectates, check_injectates
from triggerpath.knowledge.instruments import Instruments, check_instruments
from triggerpath.knowledge.review import attach_review
from triggerpath.knowledge.schema import (
    Anatomy,
    Evidence,
    Exercise,
    Hazard,
    Manifest,
    Muscle,
    Pathway,
    Statement,
    duplicate_ids,
)
from triggerpath.knowledge.valuesets import ValueSetCatalog, check_valuesets
from triggerpath.knowledge.vocabulary import REGENERATE, InputVocabulary, field_exists

FILES: dict[str, type[BaseModel]] = {
    "manifest.yaml": Manifest,
    "evidence.yaml": Evidence,
    "anatomy.yaml": Anatomy,
    "pathway.yaml": Pathway,
    "instruments.yaml": Instruments,
    "injectates.yaml": Injectates,
    "valuesets.yaml": ValueSetCatalog,
    "inputs.yaml": InputVocabulary,
}


@dataclass(frozen=True)
class Knowledge:
    """The whole knowledge base, validated, with lookup indexes."""

    manifest: Manifest
    evidence: Evidence
    anatomy: Anatomy
    pathway: Pathway
    instruments: Instruments  # outcome instruments, course rules, re-evaluation (issue 4)
    injectates: Injectates  # local anesthetics, dose limits, steroids, checklist (issue 3)
    valuesets: ValueSetCatalog  # EHR code lists for the FHIR adapters (issue 6)
    inputs: InputVocabulary  # the assessment fields rules may read (knowledge/vocabulary.py)
    statements: dict[str, Statement] = field(default_factory=dict)
    muscles: dict[str, Muscle] = field(default_factory=dict)
    hazards: dict[str, Hazard] = field(default_factory=dict)
    exercises: dict[str, Exercise] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def modality_ids(self) -> dict[str, int]:
        """Conservative-care modality id -> stepped-care stage."""
        return {m.id: s.stage for s in self.pathway.care_steps for m in s.modalities}


def _read(name: str) -> Any:
    """One data file, parsed (tests replace this to feed the loader broken data)."""
    return read_yaml(name)


@cache
def load_knowledge() -> Knowledge:
    """The packaged knowledge base, validated (cached: it is immutable).

    In the console script, from the checked cache of an earlier run's validated result
    when the knowledge files are unchanged (``knowledge/cache.py``); everywhere else, and
    on any cache miss, by :func:`validate_knowledge`.
    """
    directory = knowledge_cache.configured()
    if directory is None:
        return validate_knowledge()
    return knowledge_cache.load_cached(directory, validate_knowledge, Knowledge)


def validate_knowledge() -> Knowledge:
    """Read every data file, validate it and check the cross-references, every time."""
    parsed: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for name, model in FILES.items():
        try:
            parsed[name] = validated(name, model, _read)
        except KnowledgeError as exc:
            problems.extend(exc.problems)  # every file's problems, then raised together
    if problems:
        raise KnowledgeError(problems)
    # each file fills the Knowledge field of its name (FILES is the one list of them)
    kb = Knowledge(**{name.removesuffix(".yaml"): parsed[name] for name in FILES})
    kb.statements.update({s.id: s for s in kb.evidence.statements})
    kb.muscles.update({m.id: m for m in kb.anatomy.muscles})
    kb.hazards.update({h.id: h for h in kb.anatomy.hazards})
    kb.exercises.update({x.id: x for x in kb.anatomy.exercises})
    problems = list(check_references(kb))
    if not problems:
        problems = list(attach_review(kb))  # review.yaml: clinical review status (review.py)
    if problems:
        raise KnowledgeError(problems)
    return kb


# --------------------------------------------------------------------------- checks
def cited_ids(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, statement id) cited anywhere in a model tree."""
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            sub = f"{path}.{name}" if path else name
            if name in ("statement_ids",) and isinstance(value, list):
                for i, sid in enumerate(value):
                    yield f"{sub}[{i}]", sid
            elif name == "statement_id" and isinstance(value, str):
                yield sub, value
            else:
                yield from cited_ids(value, sub)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            label = getattr(item, "id", None) or getattr(item, "code", None) or i
            yield from cited_ids(item, f"{path}[{label}]")


def check_references(kb: Knowledge) -> Iterator[FieldProblem]:
    """Every cross-reference the schemas cannot see, file by file."""
    yield from _check_unique_ids(kb)
    yield from _check_citations(kb)
    yield from _check_muscle_links(kb)
    yield from _check_pathway_fields(kb)
    yield from _check_pathway_links(kb)
    classes = {c.id for c in kb.pathway.medication_classes}
    yield from check_instruments(kb.instruments, classes, kb.inputs)
    yield from check_injectates(kb.injectates, kb.statements)
    yield from check_valuesets(kb.valuesets, classes, kb.inputs)


def _check_unique_ids(kb: Knowledge) -> Iterator[FieldProblem]:
    """Statement, muscle, hazard, exercise and modality ids are each unique."""
    yield from duplicate_ids("evidence.yaml:statements", [s.id for s in kb.evidence.statements])
    yield from duplicate_ids("anatomy.yaml:muscles", [m.id for m in kb.anatomy.muscles])
    yield from duplicate_ids("anatomy.yaml:hazards", [h.id for h in kb.anatomy.hazards])
    yield from duplicate_ids("anatomy.yaml:exercises", [x.id for x in kb.anatomy.exercises])
    yield from duplicate_ids(
        "pathway.yaml:care_steps.modalities",
        [m.id for s in kb.pathway.care_steps for m in s.modalities],
    )


def _check_citations(kb: Knowledge) -> Iterator[FieldProblem]:
    """Every statement id cited in any file is in the evidence catalogue."""
    for file in FILES:
        root = getattr(kb, file.removesuffix(".yaml"))
        for where, sid in cited_ids(root):
            if sid not in kb.statements:
                yield FieldProblem(f"{file}:{where}", f"unknown statement id {sid}")


def _check_muscle_links(kb: Knowledge) -> Iterator[FieldProblem]:
    """A muscle's hazards and exercises are described in anatomy.yaml."""
    for m in kb.anatomy.muscles:
        for h in m.hazards:
            if h not in kb.hazards:
                yield FieldProblem(f"anatomy.yaml:muscles[{m.id}].hazards", f"unknown hazard {h!r}")
        for x in m.exercises:
            if x not in kb.exercises:
                yield FieldProblem(
                    f"anatomy.yaml:muscles[{m.id}].exercises", f"unknown exercise {x!r}"
                )


def _check_pathway_fields(kb: Knowledge) -> Iterator[FieldProblem]:
    """The pathway's rules read assessment fields; its criteria trigger point fields."""
    p = kb.pathway
    rules: list[tuple[str, Any]] = [
        *((f"red_flags[{r.id}].when", r.when) for r in p.red_flags),
        *((f"pain_generators[{g.id}].when", g.when) for g in p.pain_generators),
        *((f"contraindications[{c.id}].when", c.when) for c in p.contraindications),
        *((f"cautions[{c.id}].when", c.when) for c in p.cautions),
        *((f"supporting_indications[{c.id}].when", c.when) for c in p.supporting_indications),
    ]
    for where, cond in rules:
        for path in paths_in(cond):
            if not kb.inputs.has_assessment_field(path):
                yield FieldProblem(
                    f"pathway.yaml:{where}", f"no input field {path!r} ({REGENERATE})"
                )
    tpc = p.trigger_point_criteria
    for path in [*paths_in(tpc.required), *tpc.confirmatory, *tpc.supportive]:
        if not kb.inputs.has_trigger_point_field(path):
            yield FieldProblem(
                "pathway.yaml:trigger_point_criteria",
                f"no trigger point field {path!r} ({REGENERATE})",
            )


def _check_pathway_links(kb: Knowledge) -> Iterator[FieldProblem]:
    """Each pain generator's redirect is described; care steps are stages 1, 2, 3."""
    p = kb.pathway
    codes = {r.code for r in p.redirects}
    for g in p.pain_generators:
        if g.redirect not in codes:
            yield FieldProblem(
                f"pathway.yaml:pain_generators[{g.id}].redirect", "redirect not described"
            )
    stages = sorted(s.stage for s in p.care_steps)
    if stages != [1, 2, 3]:
        yield FieldProblem(
            "pathway.yaml:care_steps", f"need stages 1, 2, 3 once each, got {stages}"
        )


__all__ = ["FILES", "Knowledge", "check_references", "cited_ids", "field_exists", "load_knowledge"]
