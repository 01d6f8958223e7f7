"""The rule language's three-valued logic: unknown is never guessed."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from triggerpath.knowledge.conditions import Condition, evaluate, paths_in, resolve

COND: TypeAdapter[Condition] = TypeAdapter(Condition)


def c(raw: object) -> Condition:
    return COND.validate_python(raw)


def test_path_true_false_unknown() -> None:
    assert evaluate(c("a.b"), {"a": {"b": True}}).value is True
    assert evaluate(c("a.b"), {"a": {"b": False}}).value is False
    ev = evaluate(c("a.b"), {"a": {"b": None}})
    assert ev.value is None and ev.unknown == ["a.b"]


def test_any_true_beats_unknown_and_all_false_beats_unknown() -> None:
    facts = {"x": True, "y": None, "z": False}
    assert evaluate(c({"any": ["x", "y"]}), facts).value is True
    assert evaluate(c({"any": ["z", "y"]}), facts).value is None
    assert evaluate(c({"all": ["z", "y"]}), facts).value is False
    assert evaluate(c({"all": ["x", "y"]}), facts).value is None
    assert evaluate(c({"all": ["x"]}), facts).because == ["x"]


def test_compare_and_contains_over_lists() -> None:
    facts = {"n": 3, "meds": [{"cls": "anticoagulant"}, {"cls": None}], "none": None}
    assert evaluate(c({"field": "n", "gte": 3}), facts).value is True
    assert evaluate(c({"field": "n", "gt": 3}), facts).value is False
    assert evaluate(c({"field": "meds[].cls", "contains": "anticoagulant"}), facts).value is True
    assert evaluate(c({"field": "meds[].cls", "contains": "antiplatelet"}), facts).value is False
    assert evaluate(c({"field": "none", "lt": 2}), facts).value is None
    assert resolve(facts, "meds[].cls") == ["anticoagulant", None]


def test_not_and_paths() -> None:
    cond = c({"not": {"any": ["a", {"field": "b", "eq": 1}]}})
    assert evaluate(cond, {"a": False, "b": 1}).value is False
    assert evaluate(cond, {"a": False, "b": 2}).value is True
    assert paths_in(cond) == ["a", "b"]


def test_compare_needs_exactly_one_operator() -> None:
    with pytest.raises(ValidationError):
        c({"field": "n", "gte": 1, "lte": 2})
    with pytest.raises(ValidationError):
        c({"field": "n"})
