"""Turn untrusted input into a valid ``Assessment``, or say exactly what is wrong.

Every problem names the field by its dotted path (``trigger_points[0].muscle``)
and the reason; all problems are reported at once. Knowledge-base ids (muscles,
care modalities, medication classes) are checked here, so the engine can rely
on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from triggerpath.domain.assessment import Assessment
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.loader import Knowledge

M = TypeVar("M", bound=BaseModel)


def loc_to_path(loc: tuple[int | str, ...]) -> str:
    """Pydantic's error location as a dotted path with list indexes."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_from(err: ValidationError, prefix: str = "") -> list[FieldProblem]:
    problems = []
    for e in err.errors():
        path = loc_to_path(tuple(e["loc"]))
        msg = str(e["msg"])
        if e["type"] == "value_error" and ": " in msg and not path:
            # model-level checks phrase their message as "field: reason"
            msg = msg.removeprefix("Value error, ")
            path, _, msg = msg.partition(": ")
        else:
            msg = msg.removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (not part of the schema)"
        full = f"{prefix}.{path}" if prefix and path else prefix or path
        problems.append(FieldProblem(full or "(root)", msg))
    return problems


def unknown_muscle(field: str, muscle: str, kb: Knowledge) -> list[FieldProblem]:
    """The problem with ``field`` when it names a muscle the knowledge base does not hold."""
    if muscle in kb.muscles:
        return []
    return [FieldProblem(field, f"unknown muscle {muscle!r}; see 'triggerpath knowledge muscles'")]


def check_ids(a: Assessment, kb: Knowledge, prefix: str = "") -> list[FieldProblem]:
    """Knowledge-base ids the schema cannot know: muscles, modalities, drug classes."""
    pre = f"{prefix}." if prefix else ""
    problems: list[FieldProblem] = []
    for i, tp in enumerate(a.trigger_points):
        problems += unknown_muscle(f"{pre}trigger_points[{i}].muscle", tp.muscle, kb)
    modalities = kb.modality_ids
    for i, c in enumerate(a.conservative_care or []):
        if c.modality not in modalities:
            problems.append(
                FieldProblem(
                    f"{pre}conservative_care[{i}].modality",
                    f"unknown modality {c.modality!r}; known: {', '.join(sorted(modalities))}",
                )
            )
    classes = {c.id for c in kb.pathway.medication_classes}
    for i, m in enumerate(a.medications or []):
        if m.drug_class is not None and m.drug_class not in classes:
            problems.append(
                FieldProblem(
                    f"{pre}medications[{i}].drug_class",
                    f"unknown class {m.drug_class!r}; known: {', '.join(sorted(classes))}",
                )
            )
    return problems


def parse_input(
    model: type[M],
    data: Any,
    what: str,
    check: Callable[[M], list[FieldProblem]] = lambda _: [],
) -> M:
    """Validate untrusted JSON-like data into ``model``, then ``check`` what the schema cannot
    know (knowledge-base ids, dates); raise ``InvalidInput`` with every problem, naming its field.
    """
    if not isinstance(data, dict):
        raise InvalidInput.single("(root)", f"expected a JSON object with the {what}")
    try:
        value = model.model_validate(data)
    except ValidationError as err:
        raise InvalidInput(problems_from(err)) from None
    problems = check(value)
    if problems:
        raise InvalidInput(problems)
    return value


def parse_assessment(data: Any, kb: Knowledge) -> Assessment:
    """Validate raw JSON-like data into an ``Assessment`` or raise ``InvalidInput``."""
    return parse_input(Assessment, data, "assessment", lambda a: check_ids(a, kb))


def assessment_json_schema(kb: Knowledge) -> dict[str, Any]:
    """The input's JSON Schema, with the knowledge base's ids as enums."""
    schema = Assessment.model_json_schema()
    defs = schema.get("$defs", {})
    defs["TriggerPointFinding"]["properties"]["muscle"]["enum"] = sorted(kb.muscles)
    defs["ConservativeCare"]["properties"]["modality"]["enum"] = sorted(kb.modality_ids)
    classes = sorted(c.id for c in kb.pathway.medication_classes)
    defs["Medication"]["properties"]["drug_class"]["anyOf"] = [
        {"type": "string", "enum": classes},
        {"type": "null"},
    ]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://triggerpath.example/schemas/assessment/{kb.version}"
    return schema
