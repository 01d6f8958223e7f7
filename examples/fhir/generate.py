"""Write the synthetic FHIR R4 example patients in ``examples/fhir/`` (deterministic).

Four made-up patients, each chosen to show one thing TriggerPath does with an EHR record:

=================  ===========================================================================
``tpi-candidate``  chronic low back pain with myalgia, nothing against a TPI in the chart
``anticoagulated`` myofascial neck pain on warfarin (an active order): bleeding-risk caution
``radicular``      low back pain with lumbar radiculopathy: redirected (epidural, not a TPI)
``red-flag``       low back pain with cauda equina syndrome: emergency red flag
=================  ===========================================================================

Outputs (all generated; edit this script, never the files):

* ``bundles/<id>.json``: one FHIR ``collection`` Bundle per patient;
* ``bulk/<Type>.000.ndjson``: the same resources as a FHIR Bulk Data export;
* ``cds/patient-view.json`` and ``cds/order-sign.json``: CDS Hooks requests for the
  anticoagulated patient with the record as prefetch (the order-sign one carries a draft
  TPI order, CPT 20552, and a lidocaine order).

Run ``python examples/fhir/generate.py`` to rewrite them, ``--check`` to fail when the files
differ from what the script writes (a test does this). Codes are those of TriggerPath's value
sets (ICD-10-CM, SNOMED CT, RxNorm, LOINC, CPT); dates are fixed, before 2026-11-21, so the
README's ``--as-of 2026-11-21`` examples always read the same record. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
Resource = dict[str, Any]


def patient(pid: str, gender: str, birth: str, family: str, given: str) -> Resource:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:example:triggerpath:mrn", "value": f"FHIR-{pid}"}],
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth,
    }


def condition(pid: str, n: int, system: str, code: str, display: str, onset: str) -> Resource:
    return {
        "resourceType": "Condition",
        "id": f"{pid}-condition-{n}",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": onset,
    }


def observation(
    pid: str, kind: str, code: str, display: str, value: float, unit: str, when: str
) -> Resource:
    category = "vital-signs" if kind == "weight" else "survey"
    return {
        "resourceType": "Observation",
        "id": f"{pid}-{kind}",
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def weight(pid: str, kg: float, when: str) -> Resource:
    return observation(pid, "weight", "29463-7", "Body weight", kg, "kg", when)


def pain(pid: str, nrs: int, when: str) -> Resource:
    display = "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
    return observation(pid, "pain", "72514-3", display, nrs, "{score}", when)


def no_known_allergy(pid: str) -> Resource:
    return {
        "resourceType": "AllergyIntolerance",
        "id": f"{pid}-nka",
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
        "code": {
            "coding": [{"system": SNOMED, "code": "716186003", "display": "No known allergy"}]
        },
        "patient": {"reference": f"Patient/{pid}"},
    }


def medication_order(pid: str, code: str, display: str, authored: str) -> Resource:
    return {
        "resourceType": "MedicationRequest",
        "id": f"{pid}-medication-{code}",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}],
            "text": display,
        },
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
    }


def records() -> dict[str, list[Resource]]:
    """Every example patient's resources, by patient id (the one place they are defined)."""
    lbp = ("M54.50", "Low back pain, unspecified")
    return {
        "tpi-candidate": [
            patient("tpi-candidate", "female", "1978-03-14", "Example", "Tessa"),
            condition("tpi-candidate", 1, ICD10, *lbp, "2026-05-02"),
            condition("tpi-candidate", 2, ICD10, "M79.18", "Myalgia, other site", "2026-06-10"),
            weight("tpi-candidate", 68.0, "2026-11-10"),
            pain("tpi-candidate", 6, "2026-11-10"),
            no_known_allergy("tpi-candidate"),
        ],
        "anticoagulated": [
            patient("anticoagulated", "male", "1955-09-02", "Example", "Arthur"),
            condition("anticoagulated", 1, ICD10, "M54.2", "Cervicalgia", "2026-04-20"),
            condition("anticoagulated", 2, ICD10, "M79.18", "Myalgia, other site", "2026-04-20"),
            condition(
                "anticoagulated",
                3,
                ICD10,
                "I48.91",
                "Unspecified atrial fibrillation",
                "2019-01-15",
            ),
            medication_order(
                "anticoagulated", "855332", "Warfarin Sodium 5 MG Oral Tablet", "2026-09-01"
            ),
            weight("anticoagulated", 82.0, "2026-11-03"),
            pain("anticoagulated", 5, "2026-11-03"),
            no_known_allergy("anticoagulated"),
        ],
        "radicular": [
            patient("radicular", "male", "1981-12-30", "Example", "Ravi"),
            condition("radicular", 1, ICD10, *lbp, "2026-08-01"),
            condition(
                "radicular", 2, ICD10, "M54.16", "Radiculopathy, lumbar region", "2026-08-01"
            ),
            weight("radicular", 90.0, "2026-11-12"),
            pain("radicular", 7, "2026-11-12"),
        ],
        "red-flag": [
            patient("red-flag", "female", "1963-07-21", "Example", "Rosa"),
            condition("red-flag", 1, ICD10, *lbp, "2026-10-28"),
            condition("red-flag", 2, ICD10, "G83.4", "Cauda equina syndrome", "2026-11-18"),
            weight("red-flag", 61.0, "2026-11-18"),
            pain("red-flag", 8, "2026-11-18"),
        ],
    }


def bundle(resources: list[Resource]) -> Resource:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:example:{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


def searchset(resources: list[Resource]) -> Resource | None:
    if not resources:
        return None
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def prefetch(resources: list[Resource]) -> dict[str, Any]:
    """The record split into TriggerPath's prefetch keys (what an EHR would send)."""

    def of(kind: str, code: str | None = None) -> list[Resource]:
        return [
            r
            for r in resources
            if r["resourceType"] == kind
            and (code is None or r["code"]["coding"][0]["code"] == code)
        ]

    return {
        "patient": of("Patient")[0],
        "conditions": searchset(of("Condition")),
        "medicationRequests": searchset(of("MedicationRequest")),
        "allergies": searchset(of("AllergyIntolerance")),
        "weight": searchset(of("Observation", "29463-7")),
        "pain": searchset(of("Observation", "72514-3")),
    }


def draft_orders(pid: str) -> Resource:
    tpi = {
        "resourceType": "ServiceRequest",
        "id": f"{pid}-draft-tpi",
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": [{"system": CPT, "code": "20552", "display": "Trigger point injection(s)"}],
            "text": "Trigger point injection, 1-2 muscles",
        },
        "subject": {"reference": f"Patient/{pid}"},
    }
    lidocaine = {
        "resourceType": "MedicationRequest",
        "id": f"{pid}-draft-lidocaine",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Lidocaine 1% injection"},
        "subject": {"reference": f"Patient/{pid}"},
        "dosageInstruction": [
            {
                "doseAndRate": [
                    {"doseQuantity": {"value": 4, "unit": "mL", "system": UCUM, "code": "mL"}}
                ]
            }
        ],
    }
    return bundle([tpi, lidocaine]) | {"type": "collection"}


def hook_request(hook: str, pid: str, resources: list[Resource]) -> Resource:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": pid}
    if hook == "order-sign":
        context["draftOrders"] = draft_orders(pid)
    return {
        "hook": hook,
        "hookInstance": f"00000000-0000-4000-8000-00000000000{1 if hook == 'patient-view' else 2}",
        "context": context,
        "prefetch": {k: v for k, v in prefetch(resources).items() if v is not None},
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    """Every file this script writes, relative to ``examples/fhir/``, with its content."""
    recs = records()
    files = {Path("bundles") / f"{pid}.json": dumps(bundle(rs)) for pid, rs in recs.items()}
    by_type: dict[str, list[str]] = {}
    for rs in recs.values():
        for r in rs:
            by_type.setdefault(r["resourceType"], []).append(json.dumps(r, ensure_ascii=False))
    for kind, lines in sorted(by_type.items()):
        files[Path("bulk") / f"{kind}.000.ndjson"] = "\n".join(lines) + "\n"
    for hook in ("patient-view", "order-sign"):
        files[Path("cds") / f"{hook}.json"] = dumps(
            hook_request(hook, "anticoagulated", recs["anticoagulated"])
        )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic FHIR example patients.")
    parser.add_argument("--check", action="store_true", help="fail if the files differ")
    parser.add_argument("--out", type=Path, default=HERE, help="folder (default: beside me)")
    args = parser.parse_args(argv)
    stale = []
    for rel, content in outputs().items():
        path = args.out / rel
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                stale.append(str(rel))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    if stale:
        sys.stderr.write(f"out of date (run python {Path(__file__).name}): {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
