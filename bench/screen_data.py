"""Synthetic FHIR populations for the screening tests and benchmark, and an export replicator.

``write_population`` writes a population whose measure populations are known by design:
patients cycle through the scenarios of ``SCENARIOS`` (each documents which measure
populations it belongs to), as Bulk NDJSON (optionally gzip) or as one Bundle per patient.
It also writes what a real export carries besides patients' records: an Organization (no
patient), a Condition about a patient absent from the export (unknown patient), a shared
Medication referenced by an order, and an exporter log line that is no resource.

``replicate`` copies an export ``times`` times with fresh ids (every UUID of copy k>0 is
mapped to a new one, consistently within the copy), so patients, resources and measure
counts scale exactly.
"""

from __future__ import annotations

import gzip
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

AS_OF = date(2026, 11, 21)
PERIOD_START = date(2026, 1, 1)
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_NS = uuid.UUID("0b6c4c52-4f0e-4b7a-9a59-5d1f3b1f7e21")
Resource = dict[str, Any]


def _id(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(map(str, parts))))


def _day(offset: int) -> str:
    return (AS_OF - timedelta(days=offset)).isoformat()


class _Patient:
    """Builder of one patient's resources (ids derived from the patient number)."""

    def __init__(self, n: int, born: str = "1970-05-01") -> None:
        self.pid = _id("patient", n)
        self.n = n
        self.resources: list[Resource] = [
            {"resourceType": "Patient", "id": self.pid, "gender": "female", "birthDate": born}
        ]

    def _add(self, kind: str, body: Resource) -> str:
        rid = _id(self.n, kind, len(self.resources))
        self.resources.append(
            {"resourceType": kind, "id": rid, "subject": {"reference": f"Patient/{self.pid}"}}
            | body
        )
        return f"{kind}/{rid}"

    def condition(self, system: str, code: str, onset: int) -> str:
        return self._add(
            "Condition",
            {
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {"coding": [{"system": system, "code": code}]},
                "onsetDateTime": _day(onset),
            },
        )

    def tpi(self, days_ago: int) -> str:
        return self._add(
            "Procedure",
            {
                "status": "completed",
                "code": {"coding": [{"system": CPT, "code": "20552"}]},
                "performedDateTime": _day(days_ago),
            },
        )

    def physical_therapy(self, days_ago: int) -> str:
        return self._add(
            "ServiceRequest",
            {
                "status": "completed",
                "intent": "order",
                "code": {"coding": [{"system": SNOMED, "code": "91251008"}]},
                "authoredOn": _day(days_ago),
            },
        )

    def pain_score(self, days_ago: int, value: int = 4) -> str:
        return self._add(
            "Observation",
            {
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "72514-3"}]},
                "effectiveDateTime": _day(days_ago),
                "valueQuantity": {"value": value, "unit": "{score}"},
            },
        )

    def medication(self, text: str, days_ago: int, rxnorm: str | None = None) -> str:
        concept: Resource = {"text": text}
        if rxnorm:
            concept["coding"] = [{"system": RXNORM, "code": rxnorm, "display": text}]
        return self._add(
            "MedicationRequest",
            {
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": concept,
                "authoredOn": _day(days_ago),
            },
        )


def _stepped(p: _Patient) -> None:
    """Low back pain, PT 60 days before a TPI 100 days ago, pain score 20 days after it:
    stepped care, reassessment and comprehensive care numerators."""
    p.condition(ICD10, "M54.50", 400)
    p.physical_therapy(160)
    p.tpi(100)
    p.pain_score(80)


def _risky(p: _Patient) -> None:
    """TPI 60 days ago, no conservative care, warfarin active and lumbar radiculopathy coded
    before it: bleeding-risk and red-flag/radicular numerators; no reassessment."""
    p.condition(ICD10, "M54.50", 300)
    p.condition(ICD10, "M54.16", 200)
    p.medication("Warfarin Sodium 5 MG Oral Tablet", 250, rxnorm="855332")
    p.tpi(60)


def _series(p: _Patient) -> None:
    """Nine TPIs (one a fortnight, the last 30 days ago), no pain score: over the course
    limit without re-evaluation (S000.20)."""
    p.condition(ICD10, "M54.50", 500)
    for k in range(9):
        p.tpi(30 + 14 * (8 - k))


def _candidate(p: _Patient) -> None:
    """Myalgia with an NSAID on record, no TPI, no referral: a candidate."""
    p.condition(ICD10, "M79.18", 120)
    p.medication("Ibuprofen 400 MG Oral Tablet", 90)


def _recent(p: _Patient) -> None:
    """A first TPI 10 days ago: the 2-4 week window is still open (excluded)."""
    p.condition(ICD10, "M54.50", 90)
    p.tpi(10)


def _bystander(p: _Patient) -> None:
    """No back pain, no TPI: in no measure (an order of the shared Medication resource)."""
    p.condition(SNOMED, "444814009", 30)  # viral sinusitis
    p._add(
        "MedicationRequest",
        {
            "status": "active",
            "intent": "order",
            "medicationReference": {"reference": f"Medication/{_id('med')}"},
            "authoredOn": _day(20),
        },
    )


#: scenario -> (builder, {measure id: populations the patient is in})
SCENARIOS: dict[str, tuple[Callable[[_Patient], None], dict[str, set[str]]]] = {
    "stepped": (
        _stepped,
        {
            "tpi-stepped-care": {"initial_population", "denominator", "numerator"},
            "tpi-reassessment": {"initial_population", "denominator", "numerator"},
            "tpi-course-limit": {"initial_population", "denominator"},
            "tpi-bleeding-risk": {"initial_population", "denominator"},
            "tpi-red-flags-radicular": {"initial_population", "denominator"},
            "tpi-comprehensive-care": {"initial_population", "denominator", "numerator"},
        },
    ),
    "risky": (
        _risky,
        {
            "tpi-stepped-care": {"initial_population", "denominator"},
            "tpi-reassessment": {"initial_population", "denominator"},
            "tpi-course-limit": {"initial_population", "denominator"},
            "tpi-bleeding-risk": {"initial_population", "denominator", "numerator"},
            "tpi-red-flags-radicular": {"initial_population", "denominator", "numerator"},
            "tpi-comprehensive-care": {"initial_population", "denominator"},
        },
    ),
    "series": (
        _series,
        {
            "tpi-stepped-care": {"initial_population", "denominator"},
            "tpi-reassessment": {"initial_population", "denominator"},
            "tpi-course-limit": {"initial_population", "denominator", "numerator"},
            "tpi-bleeding-risk": {"initial_population", "denominator"},
            "tpi-red-flags-radicular": {"initial_population", "denominator"},
            "tpi-comprehensive-care": {"initial_population", "denominator"},
        },
    ),
    "candidate": (
        _candidate,
        {"tpi-candidates": {"initial_population", "denominator", "numerator"}},
    ),
    "recent": (
        _recent,
        {
            "tpi-stepped-care": {"initial_population", "denominator"},
            "tpi-reassessment": {"initial_population", "denominator", "denominator_exclusion"},
            "tpi-course-limit": {"initial_population", "denominator"},
            "tpi-bleeding-risk": {"initial_population", "denominator"},
            "tpi-red-flags-radicular": {"initial_population", "denominator"},
            "tpi-comprehensive-care": {"initial_population", "denominator"},
        },
    ),
    "bystander": (_bystander, {}),
}
ORDER = tuple(SCENARIOS)


def scenario_of(n: int) -> str:
    return ORDER[n % len(ORDER)]


def patients(count: int) -> Iterator[_Patient]:
    for n in range(count):
        p = _Patient(n)
        SCENARIOS[scenario_of(n)][0](p)
        yield p


def extras() -> list[Resource]:
    """Not a patient's record: an Organization, an orphan Condition, a subject-less
    Observation and a Medication referenced by orders."""
    ghost = _id("ghost")
    return [
        {"resourceType": "Organization", "id": _id("org"), "name": "Example Health"},
        {
            "resourceType": "Condition",
            "id": _id("orphan"),
            "subject": {"reference": f"Patient/{ghost}"},
            "code": {"coding": [{"system": ICD10, "code": "M54.50"}]},
        },
        {
            "resourceType": "Observation",
            "id": _id("loose"),
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "72514-3"}]},
            "valueQuantity": {"value": 3},
        },
        {"resourceType": "Medication", "id": _id("med"), "code": {"text": "Naproxen 250 MG"}},
    ]


def write_population(folder: Path, count: int, form: str = "ndjson") -> Path:
    """``count`` patients as ``ndjson``, ``gz`` (``.ndjson.gz``) or ``bundles`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    people = list(patients(count))
    if form == "bundles":
        for p in people:
            entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in p.resources]
            bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
            (folder / f"{p.pid}.json").write_bytes(orjson.dumps(bundle))
        return folder
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for r in [r for p in people for r in p.resources] + extras():
        by_type[r["resourceType"]].append(r)
    for kind, items in sorted(by_type.items()):
        data = b"".join(orjson.dumps(r) + b"\n" for r in items)
        if form == "gz":
            (folder / f"{kind}.000.ndjson.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / f"{kind}.000.ndjson").write_bytes(data)
    (folder / "log.ndjson").write_bytes(b'{"eventId": "kickoff"}\n')
    return folder


def expected_counts(count: int) -> dict[str, dict[str, int]]:
    """Population counts of ``count`` generated patients, from the scenarios' design."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for n in range(count):
        for measure, pops in SCENARIOS[scenario_of(n)][1].items():
            for pop in pops:
                totals[measure][pop] += 1
    return {m: dict(v) for m, v in totals.items()}


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _fresh(copy: int) -> Callable[[re.Match[bytes]], bytes]:
    def sub(m: re.Match[bytes]) -> bytes:
        return str(uuid.uuid5(_NS, f"{copy}:{m.group().decode()}")).encode()

    return sub


def replicate(source: Path, dest: Path, times: int) -> Path:
    """``times`` copies of the NDJSON export ``source`` in ``dest``, copy k>0 with fresh ids."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.ndjson")):
        with (dest / path.name).open("wb") as out:
            data = path.read_bytes()
            for k in range(times):
                out.write(data if k == 0 else _UUID.sub(_fresh(k), data))
    return dest


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.screen_data OUT [--patients N] [--form ndjson|gz|bundles]`` writes a
    generated population; ``--replicate SRC --times K`` copies an NDJSON export K times."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--form", choices=["ndjson", "gz", "bundles"], default="ndjson")
    ap.add_argument("--replicate", type=Path, default=None)
    ap.add_argument("--times", type=int, default=2)
    args = ap.parse_args(argv)
    if args.replicate is not None:
        replicate(args.replicate, args.out, args.times)
    else:
        write_population(args.out, args.patients, args.form)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
