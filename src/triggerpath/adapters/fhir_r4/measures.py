"""Quality measures as FHIR R4: ``Measure`` definitions and summary ``MeasureReport`` s.

The measures are TriggerPath's (``knowledge/data/measures.yaml``). FHIR R4 allows only CQL,
FHIRPath or FHIR query as criteria languages, so each population is written as a CQL boolean
over quoted identifiers, one per TriggerPath fact (``"tpi_in_period" and not "…"``), with the
fact vocabulary's meaning in ``description``; there is no CQL library behind it: the counts
come from ``triggerpath screen``. Output is deterministic (dates are the
as-of date, not the clock) so that a report can be reproduced byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from triggerpath.adapters.fhir_r4.write import TRIGGERPATH_URI
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.measures import POPULATIONS, Criteria, Measure, MeasureCatalog

POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
SCORING_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-type"
CRITERIA_LANGUAGE = "text/cql"


def measure_url(measure_id: str) -> str:
    return f"{TRIGGERPATH_URI}/Measure/{measure_id}"


def _code(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _fhir_population(name: str) -> str:
    return name.replace("_", "-")


def _cql(criteria: Criteria) -> str:
    terms = [f'"{f}"' for f in criteria.all] + [f'not "{f}"' for f in criteria.none]
    return " and ".join(terms) or "true"


def measure_resource(m: Measure, kb: Knowledge) -> dict[str, Any]:
    """One ``Measure``: proportion scoring, populations, cited statements."""
    populations = []
    for name in POPULATIONS:
        criteria = getattr(m.populations, name)
        if criteria is None:
            continue
        populations.append(
            {
                "code": _code(POPULATION_SYSTEM, _fhir_population(name)),
                "criteria": {
                    "description": criteria.describe(),
                    "language": CRITERIA_LANGUAGE,
                    "expression": _cql(criteria),
                },
            }
        )
    return {
        "resourceType": "Measure",
        "id": m.id,
        "url": measure_url(m.id),
        "version": kb.version,
        "name": m.id.replace("-", "_"),
        "title": m.title,
        "status": "active",
        "experimental": False,
        "date": kb.manifest.released,
        "publisher": "TriggerPath",
        "description": m.description,
        "scoring": _code(SCORING_SYSTEM, "proportion", "Proportion"),
        "type": [_code(TYPE_SYSTEM, "process", "Process")],
        "improvementNotation": _code(IMPROVEMENT_SYSTEM, m.improvement),
        "relatedArtifact": [
            {
                "type": "citation",
                "label": sid,
                "display": kb.statements[sid].summary if sid in kb.statements else sid,
            }
            for sid in m.statement_ids
        ],
        "group": [{"population": populations}],
    }


def measure_bundle(catalog: MeasureCatalog, kb: Knowledge) -> dict[str, Any]:
    """Every measure as a ``collection`` Bundle (``triggerpath knowledge measures --fhir``)."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": measure_url(m.id), "resource": measure_resource(m, kb)}
            for m in catalog.measures
        ],
    }


def measure_report(
    m: Measure, counts: Mapping[str, int], start: date, end: date, as_of: date
) -> dict[str, Any]:
    """A ``summary`` MeasureReport of one measure over the period."""
    eligible = counts["denominator"] - counts["denominator_exclusion"]
    group: dict[str, Any] = {
        "population": [
            {"code": _code(POPULATION_SYSTEM, _fhir_population(name)), "count": counts[name]}
            for name in POPULATIONS
        ]
    }
    if eligible:
        group["measureScore"] = {"value": round(counts["numerator"] / eligible, 4), "unit": "1"}
    return {
        "resourceType": "MeasureReport",
        "id": f"{m.id}-{end.isoformat()}",
        "status": "complete",
        "type": "summary",
        "measure": measure_url(m.id),
        "date": as_of.isoformat(),
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "improvementNotation": _code(IMPROVEMENT_SYSTEM, m.improvement),
        "group": [group],
    }


def report_bundle(
    catalog: MeasureCatalog,
    kb: Knowledge,
    counts: Mapping[str, Mapping[str, int]],
    period: tuple[date, date],
    as_of: date,
) -> dict[str, Any]:
    """The Measures and one summary MeasureReport per measure, as a ``collection`` Bundle."""
    entries: list[dict[str, Any]] = []
    for m in catalog.measures:
        entries.append({"fullUrl": measure_url(m.id), "resource": measure_resource(m, kb)})
    for m in catalog.measures:
        report = measure_report(m, counts[m.id], period[0], period[1], as_of)
        entries.append(
            {"fullUrl": f"{TRIGGERPATH_URI}/MeasureReport/{report['id']}", "resource": report}
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


__all__: Sequence[str] = ("measure_bundle", "measure_report", "measure_resource", "report_bundle")
