"""Which resources the FHIR reader would drop on their codes alone, known once they are parsed.

Most Conditions, Procedures and Observations of a real record carry no code of any value
set, and the FHIR reader (``adapters.fhir_r4.read``) maps these three types only when a
coding of ``code`` hits a value set (or, for an Observation, is the LOINC body height). The
partition pass asks :class:`CodeFilter` about each one it has parsed anyway, and writes the
ones the reader would drop as a bare count, so that they are neither written out, read back
nor parsed a second time. The filter is conservative: it compares codes only (not their
systems), normalised as the value-set index does, and anything it cannot judge (a coding
that is not an object, a code that is not a string) is kept.
"""

from __future__ import annotations

from typing import Any, Final

from triggerpath.adapters.fhir_r4.read import LOINC_HEIGHT
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.valuesets import ValueSetIndex

CODE_GATED: Final = frozenset({"Condition", "Procedure", "Observation"})


class CodeFilter:
    """Every code the value-set index can match, built once per knowledge load."""

    def __init__(self, index: ValueSetIndex) -> None:
        self.exact = frozenset(code for _, code in index.exact) | {LOINC_HEIGHT[1]}
        self.prefix = frozenset(code for _, code in index.prefix)
        self.longest = max((len(c) for c in self.prefix), default=0)
        self._seen: dict[str, bool] = {}  # a population repeats the same few codes

    def may_match(self, code: str) -> bool:
        """Whether some value set could hold ``code`` (as ``valuesets.normalise`` has it:
        stripped, and for ICD-10-CM without dots and upper-case)."""
        for key in {code.strip(), code.strip().replace(".", "").upper()}:
            if key in self.exact:
                return True
            if any(key[:end] in self.prefix for end in range(1, min(len(key), self.longest) + 1)):
                return True
        return False

    def drops(self, kind: str, resource: dict[str, Any]) -> bool:
        """True only when the reader would certainly drop ``resource``: a code-gated type
        whose ``code.coding`` is a list of codings none of whose codes any value set holds."""
        if kind not in CODE_GATED:
            return False
        concept = resource.get("code")
        codings = concept.get("coding") if type(concept) is dict else None
        if type(codings) is not list:
            return False
        seen = self._seen
        for coding in codings:
            code = coding.get("code") if type(coding) is dict else None
            if type(code) is not str:
                return False
            hit = seen.get(code)
            if hit is None:
                if len(seen) > 100_000:
                    seen.clear()
                hit = seen[code] = self.may_match(code)
            if hit:
                return False
        return True


_FILTERS: dict[int, CodeFilter] = {}


def code_filter(kb: Knowledge) -> CodeFilter:
    """The knowledge base's :class:`CodeFilter`, memoised (knowledge is immutable)."""
    index = kb.valuesets.index
    found = _FILTERS.get(id(index))
    if found is None or len(_FILTERS) > 8:
        _FILTERS.clear()
        found = _FILTERS[id(index)] = CodeFilter(index)
    return found
