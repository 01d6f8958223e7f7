"""Read a patient's FHIR R4 (4.0.1) record into a ``PatientSnapshot``.

The snapshot and its entries are the services' plain types (:mod:`triggerpath.services.ehr`);
this module only builds them (and names them again for its importers).

Sources: a Bundle (transaction, collection, searchset …), the prefetch of a CDS
Hooks call, or a FHIR Bulk Data NDJSON export folder. Only the resource types
TriggerPath needs are mapped: Patient, Condition, Observation (weight, height,
pain, pregnancy status), MedicationRequest, MedicationStatement,
MedicationAdministration, AllergyIntolerance, Procedure and ServiceRequest.

The hot path parses JSON with orjson and reads plain dicts: full
``fhir.resources`` model validation of a whole record costs far more than the
decision it feeds, and only a few elements of a few resource types are read.
Each element is type-checked as it is read; a malformed element is skipped and
reported in ``snapshot.notes``, never guessed.

What the codes mean is data (``knowledge/data/valuesets.yaml``). Only active
records count: conditions active/recurrence/relapse, orders active/on-hold,
allergies active, observations final/amended/corrected. The snapshot turns into
a *partial* assessment for :func:`triggerpath.domain.validation.parse_assessment`:
findings the record cannot tell (trigger points, screens, stepped care) stay
null, and ``snapshot.missing`` says what is missing and why. Pure: time comes in
as ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar, get_args

import orjson

from triggerpath.domain.medications import medication_class
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.valuesets import ResourceType, ValueSetIndex
from triggerpath.services.ehr import (
    Administration,
    Evidence,
    Measurement,
    MedicationEntry,
    Missing,
    ProcedureEntry,
)
from triggerpath.services.ehr import PatientSnapshot as PatientSnapshot  # its importers' name

FHIR_VERSION = "4.0.1"
K = TypeVar("K")
V = TypeVar("V")

#: Resource types the reader maps; everything else in a record is skipped.
READ_TYPES: frozenset[str] = frozenset({"Patient", "Medication", *get_args(ResourceType)})
ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
ACTIVE_ORDER = frozenset({"active", "on-hold"})
ACTIVE_STATEMENT = frozenset({"active", "on-hold", "intended"})
FINAL_OBSERVATION = frozenset({"final", "amended", "corrected"})
DONE_PROCEDURE = frozenset({"completed", "in-progress"})
GIVEN_ADMINISTRATION = frozenset({"completed", "in-progress"})
LOINC_HEIGHT = ("http://loinc.org", "8302-2")
WEIGHT_UNITS: dict[str, Decimal] = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "[lb_av]": Decimal("0.45359237"),
    "lb": Decimal("0.45359237"),
    "lbs": Decimal("0.45359237"),
}


# --------------------------------------------------------------------------- small readers
def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _codings(concept: Any) -> list[dict[str, Any]]:
    return [c for c in _list(_dict(concept).get("coding")) if isinstance(c, dict)]


def _status_code(concept: Any) -> str | None:
    for c in _codings(concept):
        code = _str(c.get("code"))
        if code:
            return code
    return None


def parse_datetime(value: Any) -> datetime | None:
    """A FHIR date or dateTime as an aware datetime (dates at 00:00 UTC), or None."""
    text = _str(value)
    if text is None:
        return None
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id') or '?'}"


def _effective(resource: Mapping[str, Any], *names: str) -> datetime | None:
    for name in names:
        value = resource.get(name)
        if isinstance(value, dict):  # a Period
            when = parse_datetime(value.get("start")) or parse_datetime(value.get("end"))
        else:
            when = parse_datetime(value)
        if when is not None:
            return when
    return None


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


class _Memo(Generic[K, V]):
    """A memo for the reader's hot path, emptied whole once it holds more than ``size``
    results (a population repeats the same drugs and texts; memory stays bounded)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.found: dict[K, V] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        found = self.found
        if key in found:
            return found[key]
        if len(found) > self.size:
            found.clear()
        value = found[key] = compute()
        return value


_CLASS_CACHE: _Memo[tuple[int, str], str | None] = _Memo(20_000)


def _class_by_name(kb: Knowledge, name: str) -> str | None:
    """The domain's medication normaliser on a name, memoised (drug names repeat across records)."""
    return _CLASS_CACHE.get((id(kb.pathway), name), lambda: medication_class(name, kb))


_TEXT_CACHE: _Memo[tuple[int, str], tuple[str, ...]] = _Memo(50_000)


def _match_text(index: ValueSetIndex, text: str | None) -> tuple[str, ...]:
    """Value sets matched by uncoded text, memoised: a population repeats the same drug and
    allergy texts thousands of times, and the word scan is the reader's costliest step."""
    if not text:
        return ()
    return _TEXT_CACHE.get((id(index), text), lambda: index.match_text(text))


# (value sets, code, name, matched_by, drug class) of a medication concept
class _Drug(NamedTuple):
    """What a medication concept means, as a :class:`MedicationEntry` names it."""

    valuesets: tuple[str, ...]
    code: str | None
    name: str
    matched_by: str  # "code", "name" or "none"
    drug_class: str | None


_DRUG_CACHE: _Memo[tuple[int, bytes], _Drug] = _Memo(20_000)


def references_to(patient_id: str) -> frozenset[str]:
    """The forms a reference to this patient takes in bundles and exports."""
    return frozenset({f"Patient/{patient_id}", f"urn:uuid:{patient_id}", patient_id})


def _subject_ref(resource: Mapping[str, Any]) -> str | None:
    # _str(_dict(...)) spelt out: this runs once per resource of every screened patient
    for key in ("subject", "patient"):
        value = resource.get(key)
        if isinstance(value, dict):
            ref = value.get("reference")
            if isinstance(ref, str) and ref:
                return ref
    return None


def _about(resource: Mapping[str, Any], refs: frozenset[str]) -> bool:
    ref = _subject_ref(resource)
    if ref is None:
        return True  # no subject: trust the source (a patient-scoped search or bundle)
    if ref in refs:
        return True
    tail = ref.rsplit("/", 2)
    return len(tail) >= 2 and f"{tail[-2]}/{tail[-1]}" in refs


# --------------------------------------------------------------------------- the reader
class _Reader:
    def __init__(
        self,
        kb: Knowledge,
        now: datetime,
        policy: Policy,
        medications_by_ref: dict[str, dict[str, Any]],
    ) -> None:
        self.kb = kb
        self.vs = kb.valuesets.index  # plain lookup tables: the hot path
        self.now = now
        self.policy = policy
        self.meds_by_ref = medications_by_ref
        self.weights: list[Measurement] = []
        self.heights: list[Measurement] = []
        self.pains: list[Measurement] = []
        self.pregnancy_obs: list[tuple[datetime | None, bool, str]] = []
        self.onsets: list[date] = []

    # ---- coded concepts
    def matches(self, concept: Any) -> tuple[tuple[str, ...], str, str]:
        """Value sets of a CodeableConcept, the code that matched and its display."""
        first = ("", "")
        for c in _codings(concept):
            code, system = _str(c.get("code")), _str(c.get("system"))
            display = _str(c.get("display")) or _str(_dict(concept).get("text")) or code or ""
            if code and not first[0]:
                first = (f"{self.vs.by_url.get(system or '') or system} {code}", display)
            hits = self.vs.match(system, code)
            if hits:
                return hits, f"{self.vs.by_url.get(system or '')} {code}", display
        return (), first[0], first[1] or _str(_dict(concept).get("text")) or ""

    def text_of(self, concept: Any) -> str:
        text = _str(_dict(concept).get("text"))
        if text:
            return text
        for c in _codings(concept):
            display = _str(c.get("display"))
            if display:
                return display
        return ""

    # ---- resource handlers
    def patient(self, r: Mapping[str, Any], snap: PatientSnapshot) -> None:
        snap.patient_id = snap.patient_id or _str(r.get("id"))
        gender = r.get("gender")
        snap.sex = gender if gender in ("male", "female", "other", "unknown") else "unknown"
        birth = _str(r.get("birthDate"))
        snap.birth_date = birth
        born = parse_datetime(birth) if birth else None
        if born is not None:
            age = _age(born.date(), snap.as_of)
            if 0 <= age <= 120:
                snap.age_years = age
            else:
                snap.notes.append(f"Patient.birthDate {birth} gives an age of {age} years")
        snap.deceased = bool(r.get("deceasedBoolean")) or r.get("deceasedDateTime") is not None

    def condition(self, r: Mapping[str, Any], snap: PatientSnapshot) -> None:
        status = _status_code(r.get("clinicalStatus"))
        if status is not None and status not in ACTIVE_CONDITION:
            return
        if _status_code(r.get("verificationStatus")) in EXCLUDED_VERIFICATION:
            return
        hits, code, display = self.matches(r.get("code"))
        if not hits:
            return
        onset = _effective(r, "onsetDateTime", "onsetPeriod")
        when = onset.date().isoformat() if onset else None
        for vs_id in hits:
            vs = self.vs.by_id[vs_id]
            ev = Evidence(_ref(r), code, display, vs_id, when)
            for path in vs.sets:
                snap.findings.setdefault(path, []).append(ev)
            for region in vs.regions:
                if region not in snap.regions:
                    snap.regions.append(region)
            snap.causes.extend(c for c in vs.causes if c not in snap.causes)
            if vs.pain_condition:
                snap.pain_conditions.append(ev)
                if onset is not None and onset.date() <= snap.as_of:
                    self.onsets.append(onset.date())
            if "patient.pregnant" in vs.sets:
                snap.pregnant = True

    def observation(self, r: Mapping[str, Any], snap: PatientSnapshot) -> None:
        hits: tuple[str, ...] = ()
        is_height = False
        for c in _codings(r.get("code")):  # codes first: most observations are not ours
            system, code = c.get("system"), c.get("code")
            if (system, code) == LOINC_HEIGHT:
                is_height = True
                break
            hits = self.vs.match(system, code) if isinstance(code, str) else ()
            if hits:
                break
        if (not hits and not is_height) or r.get("status") not in FINAL_OBSERVATION:
            return
        when = _effective(r, "effectiveDateTime", "effectivePeriod", "issued")
        if when is not None and when > self.now + timedelta(days=1):
            return  # dated in the future: not a measurement yet
        qty = _dict(r.get("valueQuantity"))
        value = _decimal(qty.get("value"))
        if "value" not in qty and "valueInteger" in r:
            value = _decimal(r.get("valueInteger"))
        unit = _str(qty.get("code")) or _str(qty.get("unit")) or ""
        ref = _ref(r)
        if "body_weight" in hits and value is not None:
            factor = WEIGHT_UNITS.get(unit)
            if factor is None:
                snap.notes.append(f"{ref}: weight unit {unit!r} not understood; ignored")
            else:
                kg = (value * factor).quantize(Decimal("0.1"))
                if Decimal(0) < kg <= Decimal(400):
                    self.weights.append(Measurement(kg, "kg", when, ref))
        elif is_height and value is not None and unit in ("cm", ""):
            self.heights.append(Measurement(value.quantize(Decimal("0.1")), "cm", when, ref))
        elif "pain_severity" in hits and value is not None and Decimal(0) <= value <= Decimal(10):
            self.pains.append(Measurement(value, "{score}", when, ref))
        elif "pregnancy_status" in hits:
            answer, _, _ = self.matches(r.get("valueCodeableConcept"))
            if "pregnancy_status_pregnant" in answer:
                self.pregnancy_obs.append((when, True, ref))
            elif "pregnancy_status_not_pregnant" in answer:
                self.pregnancy_obs.append((when, False, ref))

    def _medication_concept(self, r: Mapping[str, Any]) -> tuple[Any, str | None]:
        concept = r.get("medicationCodeableConcept")
        if concept is not None:
            return concept, None
        ref = _str(_dict(r.get("medicationReference")).get("reference"))
        if ref is None:
            return None, None
        if ref.startswith("#"):
            for c in _list(r.get("contained")):
                if isinstance(c, dict) and c.get("id") == ref[1:]:
                    return c.get("code"), None
        med = self.meds_by_ref.get(ref)
        if med is None:
            return None, ref
        return med.get("code"), None

    def _drug_uncached(self, concept: Any) -> _Drug:
        hits, code, display = self.matches(concept)
        name = self.text_of(concept) or display
        matched_by = "code" if hits else "none"
        if not hits:
            hits = _match_text(self.vs, name)
            matched_by = "name" if hits else "none"
        drug_class = next(
            (self.vs.by_id[h].drug_class for h in hits if self.vs.by_id[h].drug_class), None
        )
        if drug_class is None:
            drug_class = _class_by_name(self.kb, name)
        return _Drug(hits, code or None, name, matched_by, drug_class)

    def _drug(self, concept: Any) -> _Drug:
        """What a medication concept means (value sets, code, name, class), memoised by the
        concept's JSON: a population orders the same few hundred drugs over and over, and
        the result depends on nothing but the concept and the knowledge base."""
        try:
            key = (id(self.vs), orjson.dumps(concept))
        except TypeError:  # not plain JSON (orjson.JSONEncodeError is a TypeError)
            return self._drug_uncached(concept)
        return _DRUG_CACHE.get(key, lambda: self._drug_uncached(concept))

    def medication(self, r: Mapping[str, Any], snap: PatientSnapshot, kind: str) -> None:
        status = _str(r.get("status")) or "unknown"
        if status == "entered-in-error":
            return
        if kind == "MedicationRequest":
            active = (
                status in ACTIVE_ORDER
                and r.get("intent") != "proposal"
                and r.get("doNotPerform") is not True
            )
        else:
            active = status in ACTIVE_STATEMENT
        concept, unresolved = self._medication_concept(r)
        ref = _ref(r)
        if concept is None:
            if active:
                why = f"reference {unresolved} not in the record" if unresolved else "no drug"
                snap.missing.append(
                    Missing(f"medications ({ref})", f"active order whose drug is unknown: {why}")
                )
            return
        authored = _str(r.get("authoredOn")) or _str(r.get("dateAsserted"))
        drug = self._drug(concept)._asdict()
        entry = MedicationEntry(
            **drug, status=status, active=active, reference=ref, authored=authored
        )
        assert snap.medications is not None
        snap.medications.append(entry)

    def allergy(self, r: Mapping[str, Any], snap: PatientSnapshot) -> None:
        status = _status_code(r.get("clinicalStatus"))
        if status is not None and status != "active":
            return
        if _status_code(r.get("verificationStatus")) in EXCLUDED_VERIFICATION:
            return
        hits, code, display = self.matches(r.get("code"))
        if not hits:
            hits = _match_text(self.vs, self.text_of(r.get("code")))
        snap.allergy_list_reviewed = True
        assert snap.allergies is not None
        for vs_id in hits:
            vs = self.vs.by_id[vs_id]
            if not vs.sets or "AllergyIntolerance" not in vs.resources:
                continue
            ev = Evidence(_ref(r), code, display or self.text_of(r.get("code")), vs_id)
            snap.allergies.append(ev)
            for path in vs.sets:
                snap.findings.setdefault(path, []).append(ev)

    def procedure(self, r: Mapping[str, Any], snap: PatientSnapshot) -> None:
        status = _str(r.get("status")) or ""
        if status not in DONE_PROCEDURE:
            return
        hits, code, display = self.matches(r.get("code"))
        if not hits:
            return  # most procedures in a record are none of ours: no date parsing for them
        when = _effective(r, "performedDateTime", "performedPeriod")
        if "tpi_procedure" not in hits:
            day = when.date().isoformat() if when else None
            snap.procedures.extend(Evidence(_ref(r), code, display, h, day) for h in hits)
            return
        assert snap.tpis is not None
        snap.tpis.append(ProcedureEntry(_ref(r), code, display, status, when))

    def service_request(self, r: Mapping[str, Any], snap: PatientSnapshot) -> None:
        if r.get("status") not in ("active", "on-hold", "completed"):
            return
        hits, code, display = self.matches(r.get("code"))
        if not hits:
            hits = _match_text(self.vs, self.text_of(r.get("code")))
        authored = _str(r.get("authoredOn"))
        for vs_id in hits:
            snap.service_requests.append(Evidence(_ref(r), code, display, vs_id, authored))

    def administration(self, r: Mapping[str, Any], snap: PatientSnapshot) -> None:
        if r.get("status") not in GIVEN_ADMINISTRATION:
            return
        concept, _ = self._medication_concept(r)
        if concept is None:
            return
        hits, _, display = self.matches(concept)
        name = self.text_of(concept) or display
        if not hits:
            hits = _match_text(self.vs, name)
        if "local_anesthetic" not in hits:
            return
        when = _effective(r, "effectiveDateTime", "effectivePeriod")
        if when is not None and not (
            self.now - timedelta(hours=24) <= when <= self.now + timedelta(minutes=5)
        ):
            return
        dosage = _dict(r.get("dosage"))
        dose = _dict(dosage.get("dose"))
        snap.administrations_24h.append(
            Administration(
                reference=_ref(r),
                name=name,
                when=when,
                dose_value=_decimal(dose.get("value")),
                dose_unit=_str(dose.get("code")) or _str(dose.get("unit")),
                text=_str(dosage.get("text")),
            )
        )

    # ---- after all resources
    def finish(self, snap: PatientSnapshot) -> None:
        p = self.policy

        def key(m: Measurement) -> datetime:
            return m.when or datetime.min.replace(tzinfo=UTC)

        if self.weights:
            last = max(self.weights, key=key)
            snap.last_weight = last
            if last.when is not None and self.now - last.when <= timedelta(
                days=p.ehr_max_weight_age_days
            ):
                snap.weight = last
        if self.heights:
            snap.height = max(self.heights, key=key)
        if self.pains:
            snap.pain_scores = sorted(self.pains, key=key)
            last = max(self.pains, key=key)
            snap.last_pain = last
            if last.when is not None and self.now - last.when <= timedelta(
                days=p.ehr_max_pain_score_age_days
            ):
                snap.recent_pain = last
        if self.pregnancy_obs and snap.pregnant is None:
            when, pregnant, ref = max(
                self.pregnancy_obs, key=lambda o: o[0] or datetime.min.replace(tzinfo=UTC)
            )
            fresh = when is not None and self.now - when <= timedelta(
                days=p.ehr_max_pregnancy_status_age_days
            )
            if pregnant:
                snap.pregnant = True
                snap.findings.setdefault("patient.pregnant", []).append(
                    Evidence(ref, "loinc 82810-3", "Pregnancy status: pregnant", "pregnancy_status")
                )
            elif fresh:
                snap.pregnant = False
        if self.onsets:
            snap.pain_onset = min(self.onsets)
        if snap.tpis is not None:
            snap.tpis.sort(key=lambda t: t.when or datetime.min.replace(tzinfo=UTC))
        self._missing(snap)

    def _missing(self, snap: PatientSnapshot) -> None:
        m = snap.missing
        if snap.age_years is None:
            m.append(Missing("patient.age_years", "no usable birth date in the record"))
        if not snap.regions:
            m.append(
                Missing("regions", "no coded back or neck pain site (low back, thoracic, neck)")
            )
        if snap.weight is None:
            if "Observation" not in snap.available:
                m.append(Missing("patient.weight_kg", "observations were not available"))
            elif snap.last_weight is not None and snap.last_weight.when is not None:
                m.append(
                    Missing(
                        "patient.weight_kg",
                        f"last weight {snap.last_weight.value} kg on "
                        f"{snap.last_weight.when.date().isoformat()} is older than "
                        f"{self.policy.ehr_max_weight_age_days} days",
                    )
                )
            else:
                m.append(Missing("patient.weight_kg", "no body weight (LOINC 29463-7) recorded"))
        if snap.sex != "male" and snap.pregnant is None:
            m.append(Missing("patient.pregnant", "no current pregnancy status in the record"))
        if snap.pain_onset is None:
            m.append(Missing("pain.duration_weeks", "no onset date on a back pain condition"))
        if "MedicationRequest" not in snap.available and "MedicationStatement" not in (
            snap.available
        ):
            m.append(Missing("medications", "the medication list was not available"))
        if "AllergyIntolerance" not in snap.available:
            m.append(Missing("contraindications", "the allergy list was not available"))
        m.append(Missing("trigger_points", "trigger point examinations are not coded in the EHR"))
        m.append(Missing("conservative_care", "stepped care tried is not coded in the EHR"))


def snapshot_from_resources(
    resources: Iterable[Any],
    knowledge: Knowledge,
    *,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
    patient_id: str | None = None,
    available: Collection[str] | None = None,
) -> PatientSnapshot:
    """Map FHIR R4 resources (plain dicts) of one patient to a ``PatientSnapshot``.

    ``available`` names the resource types the source was asked for (for CDS
    prefetch and FHIR searches); None means a whole record (a patient bundle or
    export), where every type counts as looked at. With ``patient_id`` set,
    resources about other patients are skipped.
    """
    if now.tzinfo is None:
        raise InvalidInput.single("now", "needs a timezone")
    resources = [
        r for r in resources if isinstance(r, dict) and r.get("resourceType") in READ_TYPES
    ]
    meds: dict[str, dict[str, Any]] = {}
    for r in resources:
        if r.get("resourceType") == "Medication" and _str(r.get("id")):
            meds[f"Medication/{r['id']}"] = r
            meds[f"urn:uuid:{r['id']}"] = r
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if patient_id is None and len(patients) > 1:
        raise InvalidInput.single(
            "patient_id", f"the record holds {len(patients)} patients; say which one"
        )
    refs = references_to(patient_id) if patient_id else None
    kinds = frozenset(available) if available is not None else READ_TYPES
    snap = PatientSnapshot(
        patient_id=patient_id,
        now=now,
        knowledge_version=knowledge.version,
        available=kinds,
        medications=[] if kinds & {"MedicationRequest", "MedicationStatement"} else None,
        allergies=[] if "AllergyIntolerance" in kinds else None,
        tpis=[] if "Procedure" in kinds else None,
    )
    reader = _Reader(knowledge, now, policy, meds)
    handlers: dict[str, Callable[[Mapping[str, Any], PatientSnapshot], None]] = {
        "Condition": reader.condition,
        "Observation": reader.observation,
        "MedicationRequest": lambda r, s: reader.medication(r, s, "MedicationRequest"),
        "MedicationStatement": lambda r, s: reader.medication(r, s, "MedicationStatement"),
        "MedicationAdministration": reader.administration,
        "AllergyIntolerance": reader.allergy,
        "Procedure": reader.procedure,
        "ServiceRequest": reader.service_request,
    }
    for r in resources:
        kind = r["resourceType"]
        if kind == "Patient":
            if patient_id is None or r.get("id") == patient_id:
                reader.patient(r, snap)
            continue
        handler = handlers.get(kind)
        if handler is None or (refs is not None and not _about(r, refs)):
            continue
        handler(r, snap)
    reader.finish(snap)
    return snap


# --------------------------------------------------------------------------- sources
BUNDLE_TYPES = frozenset(
    {"transaction", "batch", "collection", "searchset", "document", "history", "message"}
)


def bundle_resources(bundle: Any, where: str = "bundle") -> list[Any]:
    """The resources of a Bundle (checked enough to give field paths on bad input)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidInput.single(where, "expected a FHIR Bundle (resourceType 'Bundle')")
    if bundle.get("type") not in BUNDLE_TYPES:
        raise InvalidInput.single(
            f"{where}.type", f"unsupported Bundle type {bundle.get('type')!r}"
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidInput.single(f"{where}.entry", "expected a list of entries")
    out = []
    for e in entries:
        if isinstance(e, dict):
            r = e.get("resource")
            if isinstance(r, dict):
                out.append(r)
    return out


def read_bundle(
    bundle: Any,
    knowledge: Knowledge,
    *,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
    patient_id: str | None = None,
) -> PatientSnapshot:
    """A patient Bundle (JSON bytes/str or parsed) to a ``PatientSnapshot``."""
    if isinstance(bundle, bytes | bytearray | memoryview | str):
        try:
            bundle = orjson.loads(bundle)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput.single("bundle", f"not valid JSON: {exc}") from None
    return snapshot_from_resources(
        bundle_resources(bundle), knowledge, now=now, policy=policy, patient_id=patient_id
    )


def iter_ndjson(folder: Path, types: Collection[str] = READ_TYPES) -> Iterator[dict[str, Any]]:
    """Resources of a FHIR Bulk Data export folder (``Type.000.ndjson`` files)."""
    if not folder.is_dir():
        raise InvalidInput.single("folder", f"{folder} is not a folder")
    for path in sorted(folder.glob("*.ndjson")):
        if path.name.split(".", 1)[0] not in types:
            continue
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    r = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise InvalidInput.single(
                        f"{path.name}:{n}", "not a JSON resource (NDJSON)"
                    ) from None
                if isinstance(r, dict):
                    yield r


def bulk_patient_ids(folder: Path) -> list[str]:
    """Ids of the patients in a Bulk Data export, in file order, without duplicates."""
    ids = [_str(r.get("id")) for r in iter_ndjson(folder, {"Patient"})]
    return list(dict.fromkeys(i for i in ids if i))


def read_bulk_ndjson(
    folder: Path,
    patient_id: str,
    knowledge: Knowledge,
    *,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> PatientSnapshot:
    """One patient of a Bulk Data NDJSON export to a ``PatientSnapshot``.

    Resource types absent from the export (no ``Observation.*.ndjson``) count as
    not available, so the snapshot says the weight was not looked for.
    """
    present = (
        {p.name.split(".", 1)[0] for p in folder.glob("*.ndjson")} if folder.is_dir() else set()
    )
    resources = list(iter_ndjson(folder))
    snap = snapshot_from_resources(
        resources,
        knowledge,
        now=now,
        policy=policy,
        patient_id=patient_id,
        available=present & READ_TYPES,
    )
    if (
        snap.age_years is None
        and snap.birth_date is None
        and not any(
            r.get("resourceType") == "Patient" and r.get("id") == patient_id for r in resources
        )
    ):
        raise InvalidInput.single("patient_id", f"no Patient {patient_id!r} in {folder}")
    return snap
