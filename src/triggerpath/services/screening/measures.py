"""Quality-measure populations per patient and their totals (patient-based proportions).

A patient enters the populations of a measure in nesting order (initial population,
denominator, denominator exclusion, numerator); an excluded patient never reaches the
numerator. The evidence of a population is the resources behind its ``all`` facts (a
``none`` fact is an absence, which no resource shows), so a row is traceable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from triggerpath.knowledge.measures import POPULATIONS, Criteria, Measure, MeasureCatalog
from triggerpath.services.screening.facts import Facts

Membership = dict[str, list[str]]  # population -> resource references behind it


def _meets(criteria: Criteria, facts: Facts) -> list[str] | None:
    """The evidence when the criteria hold, else None."""
    if any(not facts.get(f) for f in criteria.all) or any(facts.get(f) for f in criteria.none):
        return None
    return sorted({ref for f in criteria.all for ref in facts.get(f, ())})


def membership(measure: Measure, facts: Facts) -> Membership:
    """The populations of ``measure`` the patient is in (empty: not in the initial one)."""
    pops = measure.populations
    initial = _meets(pops.initial_population, facts)
    if initial is None:
        return {}
    found: Membership = {"initial_population": initial}
    denominator = _meets(pops.denominator, facts)
    if denominator is None:
        return found
    found["denominator"] = denominator or initial
    excluded = _meets(pops.denominator_exclusion, facts) if pops.denominator_exclusion else None
    if excluded is not None:
        found["denominator_exclusion"] = excluded
        return found
    numerator = _meets(pops.numerator, facts)
    if numerator is not None:
        found["numerator"] = numerator or found["denominator"]
    return found


@dataclass
class Tally:
    """Population counts of one measure; partitions' tallies add up."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(POPULATIONS, 0))

    def add(self, member: Mapping[str, object]) -> None:
        for pop in member:
            self.counts[pop] += 1

    def merge(self, other: Mapping[str, int]) -> None:
        for pop, n in other.items():
            self.counts[pop] += n

    @property
    def rate(self) -> float | None:
        eligible = self.counts["denominator"] - self.counts["denominator_exclusion"]
        return round(self.counts["numerator"] / eligible, 4) if eligible else None


def measure_summary(
    catalog: MeasureCatalog, tallies: Mapping[str, Tally]
) -> list[dict[str, object]]:
    """The ``measures`` list of the screen's JSON, in catalogue order."""
    out: list[dict[str, object]] = []
    for m in catalog.measures:
        t = tallies[m.id]
        out.append(
            {
                "id": m.id,
                "title": m.title,
                "improvement": m.improvement,
                "initial_population": t.counts["initial_population"],
                "denominator": t.counts["denominator"],
                "exclusions": t.counts["denominator_exclusion"],
                "numerator": t.counts["numerator"],
                "rate": t.rate,
                "statement_ids": list(m.statement_ids),
            }
        )
    return out


def merge_tallies(
    catalog: MeasureCatalog, parts: Iterable[Mapping[str, Mapping[str, int]]]
) -> dict[str, Tally]:
    """Add up the per-partition counts (order does not matter: sums)."""
    tallies = {m.id: Tally() for m in catalog.measures}
    for part in parts:
        for measure_id, counts in part.items():
            tallies[measure_id].merge(counts)
    return tallies
