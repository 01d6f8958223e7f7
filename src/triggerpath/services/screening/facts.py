"""The facts quality measures are built from, established from a patient's coded record.

Each fact maps to the references of the resources that establish it (a fact holds when that
tuple is non-empty), so a patient in a population is always traceable to resources. The
vocabulary is :data:`triggerpath.knowledge.measures.FACTS`; its parameters (windows, value
sets, medication classes) are data in ``measures.yaml``. Time comes in as ``as_of`` and
the measurement period; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from triggerpath.knowledge.measures import Parameters
from triggerpath.services.screening.ports import EvidenceLike, ScreeningSnapshot

Dated = tuple[date | None, str]  # (when, resource reference)
Facts = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Period:
    """The measurement period (both ends inclusive) and the date the record is read as of."""

    start: date
    end: date
    as_of: date

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


def _day(text: str | None) -> date | None:
    if not text or len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _refs(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))


def _coded(evidence: Iterable[EvidenceLike], valuesets: Iterable[str]) -> list[Dated]:
    wanted = set(valuesets)
    return [(_day(e.when), e.reference) for e in evidence if e.valueset in wanted]


def _conditions(snap: ScreeningSnapshot) -> list[EvidenceLike]:
    return [e for evs in snap.findings.values() for e in evs] + list(snap.pain_conditions)


def _orders(snap: ScreeningSnapshot) -> list[EvidenceLike]:
    return [*snap.service_requests, *snap.procedures]


def _tpis(snap: ScreeningSnapshot, as_of: date) -> list[tuple[date, str]]:
    """Dated TPIs up to ``as_of``, oldest first (an undated TPI cannot be placed in time)."""
    dated = [(t.when.date(), t.reference) for t in snap.tpis or [] if t.when is not None]
    return sorted(d for d in dated if d[0] <= as_of)


def _conservative(snap: ScreeningSnapshot, p: Parameters) -> list[Dated]:
    care = _coded(_orders(snap), p.conservative_care_valuesets)
    classes = set(p.conservative_medication_classes)
    meds = [
        (_day(m.authored), m.reference) for m in snap.medications or [] if m.drug_class in classes
    ]
    return care + meds


def _pain_scores_between(snap: ScreeningSnapshot, first: date, last: date) -> list[str]:
    return [
        m.reference
        for m in snap.pain_scores
        if m.when is not None and first <= m.when.date() <= last
    ]


def record_facts(snap: ScreeningSnapshot, p: Parameters, period: Period) -> Facts:
    """Facts that hold whatever the TPIs: diagnoses, care and referrals on record."""
    as_of = period.as_of
    myofascial = _coded(snap.pain_conditions, p.myofascial_valuesets)
    tpi_orders = _coded(snap.service_requests, ["tpi_procedure"])
    referrals = _coded(snap.service_requests, p.referral_valuesets)
    return {
        "back_pain": _refs(e.reference for e in snap.pain_conditions),
        "myofascial_back_pain": _refs(r for _, r in myofascial),
        "tpi_on_record": _refs(
            [r for _, r in _tpis(snap, as_of)]
            + [r for d, r in tpi_orders if d is None or d <= as_of]
        ),
        "conservative_care_on_record": _refs(
            r for d, r in _conservative(snap, p) if d is None or d <= as_of
        ),
        "referral_on_record": _refs(r for d, r in referrals if d is None or d <= as_of),
    }


def tpi_facts(snap: ScreeningSnapshot, p: Parameters, period: Period, limit: int) -> Facts:
    """Facts about the TPIs given in the period, relative to the index (first) TPI."""
    tpis = _tpis(snap, period.as_of)
    in_period = [t for t in tpis if t[0] in period]
    facts: Facts = {"tpi_in_period": _refs(r for _, r in in_period)}
    facts |= _course_facts(snap, tpis, limit)
    if not in_period:
        return facts
    index, index_ref = in_period[0]
    w, around = p.reassessment_days, p.alongside_days
    early = [r for d, r in _conservative(snap, p) if d is not None and d < index]
    facts["conservative_care_before_tpi"] = _refs(early)
    later = _pain_scores_between(snap, index + timedelta(days=w.min), index + timedelta(days=w.max))
    facts["reassessed_2_to_4_weeks"] = _refs([*later, index_ref] if later else [])
    open_window = index + timedelta(days=w.max) > period.as_of
    facts["reassessment_window_open"] = (index_ref,) if open_window else ()
    pt = _coded(_orders(snap), p.physical_therapy_valuesets)
    first, last = index - timedelta(days=around.before), index + timedelta(days=around.after)
    alongside = [r for d, r in pt if d is not None and first <= d <= last]
    facts["physical_therapy_alongside_tpi"] = _refs([*alongside, index_ref] if alongside else [])
    facts["bleeding_risk_medicine_at_tpi"] = _bleeding_risk(snap, p, in_period)
    facts["red_flag_or_radicular_at_tpi"] = _red_flags(snap, p, in_period)
    return facts


def _course_facts(snap: ScreeningSnapshot, tpis: list[tuple[date, str]], limit: int) -> Facts:
    """S000.20: a series beyond ``limit`` TPIs, and a pain score between the limit-th and the
    next TPI (the re-evaluation before going on)."""
    if len(tpis) <= limit:
        return {"over_course_limit": (), "reevaluated_at_course_limit": ()}
    between = _pain_scores_between(snap, tpis[limit - 1][0], tpis[limit][0]) if limit else []
    return {
        "over_course_limit": _refs(r for _, r in tpis[limit:]),
        "reevaluated_at_course_limit": _refs(between),
    }


def _bleeding_risk(
    snap: ScreeningSnapshot, p: Parameters, in_period: list[tuple[date, str]]
) -> tuple[str, ...]:
    """Active anticoagulant/antiplatelet orders authored on or before a TPI in the period."""
    classes = set(p.bleeding_risk_classes)
    hits: list[str] = []
    for day, ref in in_period:
        meds = [
            m.reference
            for m in snap.medications or []
            if m.active and m.drug_class in classes and (_day(m.authored) or day) <= day
        ]
        hits += [*meds, ref] if meds else []
    return _refs(hits)


def _red_flags(
    snap: ScreeningSnapshot, p: Parameters, in_period: list[tuple[date, str]]
) -> tuple[str, ...]:
    """Active red-flag or radicular conditions with onset on or before a TPI in the period."""
    coded = _coded(_conditions(snap), [*p.red_flag_valuesets, *p.radicular_valuesets])
    hits: list[str] = []
    for day, ref in in_period:
        found = [r for onset, r in coded if onset is None or onset <= day]
        hits += [*found, ref] if found else []
    return _refs(hits)


def patient_facts(snap: ScreeningSnapshot, p: Parameters, period: Period, limit: int) -> Facts:
    """Every fact of the vocabulary for one patient (absent TPI facts are empty)."""
    return record_facts(snap, p, period) | tpi_facts(snap, p, period, limit)
