"""A tiny, declarative condition language for rules kept as data.

Rules in the knowledge base say *when* they apply with a condition over the
assessment's fields, for example::

    when: {any: [pain_generators.radicular.pain_below_knee,
                 {all: [pain_generators.facet.extension_rotation_pain,
                        pain_generators.facet.facet_tenderness]}]}

Forms:
  ``"a.b.c"``                      the boolean field is true
  ``{any: [...]}`` / ``{all: [...]}``  or / and of sub-conditions
  ``{not: cond}``                  negation
  ``{field: "a.b", gte: 3}``       numeric comparison (gte, gt, lte, lt, eq)
  ``{field: "a[].b", contains: "x"}`` list (``[]`` maps over list items) holds a value

Evaluation uses three-valued (Kleene) logic: an unanswered field is *unknown*,
never guessed; an unknown result tells the engine what information it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from triggerpath.knowledge.base import Strict

Tri = bool | None  # True, False or unknown


class AnyOf(Strict):
    model_config = ConfigDict(populate_by_name=True)
    any_: list[Condition] = Field(alias="any", min_length=1)


class AllOf(Strict):
    model_config = ConfigDict(populate_by_name=True)
    all_: list[Condition] = Field(alias="all", min_length=1)


class Not(Strict):
    model_config = ConfigDict(populate_by_name=True)
    not_: Condition = Field(alias="not")


class Compare(Strict):
    field: str
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None
    eq: float | str | bool | None = None
    contains: str | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Compare:
        ops = [
            o for o in ("gte", "gt", "lte", "lt", "eq", "contains") if getattr(self, o) is not None
        ]
        if len(ops) != 1:
            raise ValueError(f"exactly one operator is needed, got {ops or 'none'}")
        return self


Condition = str | AnyOf | AllOf | Not | Compare  # AnyOf, AllOf, Not resolve it when first built


def paths_in(cond: Condition) -> list[str]:
    """Every field path a condition reads (for load-time validation)."""
    if isinstance(cond, str):
        return [cond]
    if isinstance(cond, AnyOf):
        return [p for c in cond.any_ for p in paths_in(c)]
    if isinstance(cond, AllOf):
        return [p for c in cond.all_ for p in paths_in(c)]
    if isinstance(cond, Not):
        return paths_in(cond.not_)
    return [cond.field]


_MISSING = object()


def resolve(facts: Any, path: str) -> Any:
    """Value at a dotted path in plain data; ``x[]`` maps over a list.

    Returns ``None`` where any step is unknown (``None``), and a flat list when
    the path crosses a list.
    """
    parts = path.split(".")
    return _resolve(facts, parts)


def _resolve(node: Any, parts: list[str]) -> Any:
    if not parts:
        return node
    if node is None:
        return None
    head, rest = parts[0], parts[1:]
    over_list = head.endswith("[]")
    key = head[:-2] if over_list else head
    value: Any = node.get(key, _MISSING) if isinstance(node, dict) else getattr(node, key, _MISSING)
    if value is _MISSING:
        raise KeyError(path_str(parts))
    if not over_list:
        return _resolve(value, rest)
    if value is None:
        return None
    out: list[Any] = []
    for item in value:
        sub = _resolve(item, rest)
        if isinstance(sub, list):
            out.extend(sub)
        else:
            out.append(sub)
    return out


def path_str(parts: list[str]) -> str:
    return ".".join(parts)


@dataclass
class Evaluation:
    """Outcome of a condition: the truth value and the evidence behind it."""

    value: Tri
    because: list[str] = field(default_factory=list)  # fields that made it true
    unknown: list[str] = field(default_factory=list)  # unanswered fields that matter


def _truth(value: Any) -> Tri:
    if value is None:
        return None
    if isinstance(value, list):
        if any(v is True for v in value):
            return True
        if any(v is None for v in value):
            return None
        return False
    return bool(value)


def evaluate(cond: Condition, facts: Any, prefix: str = "") -> Evaluation:
    """Evaluate ``cond`` against ``facts`` with Kleene three-valued logic."""
    if isinstance(cond, str):
        v = _truth(resolve(facts, cond))
        name = prefix + cond
        if v is None:
            return Evaluation(None, unknown=[name])
        return Evaluation(v, because=[name] if v else [])
    if isinstance(cond, AnyOf):
        parts = [evaluate(c, facts, prefix) for c in cond.any_]
        trues = [p for p in parts if p.value is True]
        if trues:
            return Evaluation(True, because=[b for p in trues for b in p.because])
        unknown = [u for p in parts if p.value is None for u in p.unknown]
        return Evaluation(None if unknown else False, unknown=unknown)
    if isinstance(cond, AllOf):
        parts = [evaluate(c, facts, prefix) for c in cond.all_]
        if any(p.value is False for p in parts):
            return Evaluation(False)
        unknown = [u for p in parts if p.value is None for u in p.unknown]
        if unknown:
            return Evaluation(None, unknown=unknown)
        return Evaluation(True, because=[b for p in parts for b in p.because])
    if isinstance(cond, Not):
        inner = evaluate(cond.not_, facts, prefix)
        if inner.value is None:
            return inner
        return Evaluation(not inner.value)
    return _compare(cond, facts, prefix)


def _compare(cond: Compare, facts: Any, prefix: str) -> Evaluation:
    name = prefix + cond.field
    value = resolve(facts, cond.field)
    if value is None:
        return Evaluation(None, unknown=[name])
    if cond.contains is not None:
        items: list[Any] = value if isinstance(value, list) else [value]
        hit = cond.contains in items
        return Evaluation(hit, because=[name] if hit else [])
    ok: bool
    if cond.eq is not None:
        ok = value == cond.eq
    elif cond.gte is not None:
        ok = value >= cond.gte
    elif cond.gt is not None:
        ok = value > cond.gt
    elif cond.lte is not None:
        ok = value <= cond.lte
    else:
        assert cond.lt is not None
        ok = value < cond.lt
    return Evaluation(ok, because=[name] if ok else [])


Op = Literal["gte", "gt", "lte", "lt", "eq", "contains"]
