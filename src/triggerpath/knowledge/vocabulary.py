"""The input vocabulary: which assessment fields the knowledge base may name.

Rules in ``pathway.yaml``, ``instruments.yaml`` and ``valuesets.yaml`` read assessment
fields by dotted path (``pain.duration_weeks``, ``trigger_points[].taut_band``). The
knowledge layer sits below the domain, so it cannot import the assessment model to check
those paths; instead the model's paths are kept here as data, in
``knowledge/data/inputs.yaml``, and the loader checks every rule against them::

    domain/assessment.py ──input_paths()──> knowledge/data/inputs.yaml <── loader checks
          (the model)      scripts/gen-vocabulary     (the vocabulary)      rule paths

``tests/test_vocabulary.py`` fails when the file names a path the model no longer has (a
field renamed or removed), and checks every rule path against the model itself; then run
``scripts/gen-vocabulary``. A field only added to the model can wait until a rule reads it:
the loader then names the path and this command.

Path syntax (as :func:`field_exists` reads it): ``a.b`` for a nested model, ``a[]`` for the
items of a list, ``a[].b`` for a field of each item; a list named without ``[]`` only as the
last part.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field

from triggerpath.knowledge.base import Strict

REGENERATE = "after changing domain/assessment.py run scripts/gen-vocabulary"


class InputVocabulary(Strict):
    """``inputs.yaml``: every field path of the assessment and of one trigger point finding."""

    assessment: list[str] = Field(min_length=1)
    trigger_point: list[str] = Field(min_length=1)

    def has_assessment_field(self, path: str) -> bool:
        return path in self.assessment

    def has_trigger_point_field(self, path: str) -> bool:
        return path in self.trigger_point


def input_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every path :func:`field_exists` accepts for ``model``, in field order."""
    return list(_paths(model, prefix))


def _paths(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, info in model.model_fields.items():
        inner, is_list = _unwrap(info.annotation)
        path = prefix + name
        yield path
        if is_list:
            yield f"{path}[]"
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _paths(inner, f"{path}[]." if is_list else f"{path}.")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The model class inside Optional[...] / list[...], and whether a list was crossed."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation, is_list
        elif origin is list:
            is_list = True
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, is_list


def field_exists(model: type[BaseModel], path: str) -> bool:
    """Whether a dotted path (``a.b[].c``) names a field of ``model``."""
    current: Any = model
    parts = path.split(".")
    for n, part in enumerate(parts):
        want_list = part.endswith("[]")
        name = part[:-2] if want_list else part
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return False
        info = current.model_fields.get(name)
        if info is None:
            return False
        current, is_list = _unwrap(info.annotation)
        last = n == len(parts) - 1
        if (want_list and not is_list) or (is_list and not want_list and not last):
            return False
    return True


__all__ = ["REGENERATE", "InputVocabulary", "field_exists", "input_paths"]
