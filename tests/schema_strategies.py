"""Hypothesis strategies generated from a JSON Schema (the subset Pydantic emits).

hypothesis-jsonschema 0.23 no longer runs on the pinned Hypothesis for object schemas
(``cu.many`` lost ``more()``), so the harness derives its schema strategies here: local
``$ref``, ``anyOf``/``oneOf``, ``enum``/``const``, objects (required and optional
properties), arrays, strings (length, pattern), integers and numbers (bounds), booleans
and null. Optional properties are drawn or left out; nothing outside the schema is added.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

JSON = dict[str, Any]


def from_schema(schema: JSON, *, max_items: int = 4) -> st.SearchStrategy[Any]:
    """A strategy for values valid against ``schema`` (its ``$defs`` resolved locally)."""
    defs: JSON = schema.get("$defs", {})
    cache: dict[str, st.SearchStrategy[Any]] = {}

    def ref(name: str) -> st.SearchStrategy[Any]:
        if name not in cache:
            cache[name] = st.deferred(lambda: build(defs[name]))
        return cache[name]

    def build(s: JSON) -> st.SearchStrategy[Any]:
        if "$ref" in s:
            return ref(s["$ref"].rsplit("/", 1)[-1])
        if "const" in s:
            return st.just(s["const"])
        if "enum" in s:
            return st.sampled_from(s["enum"])
        for key in ("anyOf", "oneOf"):
            if key in s:
                return st.one_of([build(sub) for sub in s[key]])
        if "allOf" in s and len(s["allOf"]) == 1:
            return build(s["allOf"][0])
        kind = s.get("type")
        if isinstance(kind, list):
            return st.one_of([build({**s, "type": k}) for k in kind])
        return _typed(kind, s)

    def _typed(kind: str | None, s: JSON) -> st.SearchStrategy[Any]:
        if kind == "object":
            props: JSON = s.get("properties", {})
            required = set(s.get("required", []))
            return st.fixed_dictionaries(
                {k: build(v) for k, v in props.items() if k in required},
                optional={k: build(v) for k, v in props.items() if k not in required},
            )
        if kind == "array":
            lo = s.get("minItems", 0)
            hi = min(s.get("maxItems", lo + max_items), lo + max_items)
            items = build(s.get("items", {}))
            return st.lists(items, min_size=lo, max_size=hi, unique=bool(s.get("uniqueItems")))
        if kind == "string":
            if "pattern" in s:
                return st.from_regex(s["pattern"], fullmatch=True)
            lo = s.get("minLength", 0)
            return st.text(min_size=lo, max_size=max(lo, min(s.get("maxLength", 30), 30)))
        if kind == "integer":
            return st.integers(s.get("minimum"), s.get("maximum"))
        if kind == "number":
            lo = s.get("minimum", s.get("exclusiveMinimum"))
            hi = s.get("maximum", s.get("exclusiveMaximum"))
            return st.floats(
                lo,
                hi,
                allow_nan=False,
                exclude_min="exclusiveMinimum" in s,
                exclude_max="exclusiveMaximum" in s,
            )
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))

    return build(schema)
