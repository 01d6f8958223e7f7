"""Serving CDS Hooks with a flat tail: garbage-collector tuning, its pause log, warm-up data.

Measured before (issue 16): full collections over the start-up heap (knowledge, value
sets, compiled code) paused requests for 93–120 ms. After warm-up every object alive is
start-up state, so :func:`tune_gc` collects once, moves it all to the permanent generation
(``gc.freeze()``: never scanned again) and raises the thresholds, so the many short-lived
containers of a parsed prefetch are freed by reference counting between collections.

:class:`GcPauses` records every collection's duration (``gc.callbacks``); with
``TRIGGERPATH_CDS_GC_STATS_DIR`` set, each worker writes them there at shutdown (the
benchmark reads them).
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path
from typing import Any

GC_THRESHOLDS = (50_000, 20, 100)
GC_STATS_DIR_ENV = "TRIGGERPATH_CDS_GC_STATS_DIR"


class GcPauses:
    """Durations of this process's garbage collections, by generation."""

    def __init__(self) -> None:
        self.pauses_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.pauses_ms[int(info["generation"])].append(
                (time.perf_counter() - self._started) * 1000
            )

    def summary(self) -> dict[str, Any]:
        """Count, total and maximum pause per generation."""
        return {
            f"gen{g}": {"count": len(v), "total_ms": sum(v), "max_ms": max(v, default=0.0)}
            for g, v in self.pauses_ms.items()
        }

    def write(self) -> None:
        """Write this worker's pauses to ``$TRIGGERPATH_CDS_GC_STATS_DIR/gc-<pid>.json``."""
        folder = os.environ.get(GC_STATS_DIR_ENV)
        if not folder:
            return
        data = {
            "pid": os.getpid(),
            "thresholds": list(gc.get_threshold()),
            "frozen": gc.get_freeze_count(),
            "pauses_ms": self.pauses_ms,
        }
        Path(folder, f"gc-{os.getpid()}.json").write_text(json.dumps(data), encoding="utf-8")


PAUSES = GcPauses()


def tune_gc() -> None:
    """After warm-up: collect, freeze the start-up heap, raise thresholds, log pauses."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    if PAUSES not in gc.callbacks:
        gc.callbacks.append(PAUSES)


def warm_up_request(hook: str) -> dict[str, Any]:
    """A small synthetic hook call (low back pain, warfarin, a TPI with lidocaine) that
    walks every step of a real one: prefetch, record, engine, cards, JSON."""
    pid = "warm-up"
    subject = {"reference": f"Patient/{pid}"}
    condition = {
        "resourceType": "Condition",
        "id": "lbp",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]},
        "subject": subject,
        "onsetDateTime": "2019-06-01",
    }
    warfarin = {
        "resourceType": "MedicationRequest",
        "id": "warfarin",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Warfarin Sodium 5 MG Oral Tablet"},
        "subject": subject,
    }
    prefetch = {
        "patient": {
            "resourceType": "Patient",
            "id": pid,
            "gender": "female",
            "birthDate": "1970-05-01",
        },
        "conditions": _searchset(condition),
        "medicationRequests": _searchset(warfarin),
        "allergies": None,
    }
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": f"warm-up-{hook}",
        "context": {"userId": "Practitioner/warm-up", "patientId": pid},
        "prefetch": prefetch,
    }
    if hook != "patient-view":
        body["context"]["draftOrders"] = _draft_orders(subject)
        body["context"]["selections"] = ["ServiceRequest/tpi", "MedicationRequest/lidocaine"]
    return body


def _searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def _draft_orders(subject: dict[str, str]) -> dict[str, Any]:
    tpi = {
        "resourceType": "ServiceRequest",
        "id": "tpi",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "20552"}]},
        "subject": subject,
    }
    lidocaine = {
        "resourceType": "MedicationRequest",
        "id": "lidocaine",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Lidocaine 1% injection"},
        "subject": subject,
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mL"}}]}],
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": tpi}, {"resource": lidocaine}],
    }
