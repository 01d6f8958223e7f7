"""A stored session as the procedure note reads it (structured fields only, nothing assumed).

Shared by the web app's note and the FHIR export of an episode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from triggerpath.adapters.documents.build import ProcedureRecord, ProcedureSite
from triggerpath.services.episodes import parse_technique
from triggerpath.services.payloads import SessionData


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _legacy_needle(text: str | None) -> tuple[int | None, float | None]:
    """Gauge and length from an older free-text needle ("27 G, 38 mm"), when they read so."""
    m = re.fullmatch(r"\s*(\d{2})\s*G\s*,\s*(\d+(?:\.\d+)?)\s*mm\s*", text or "")
    return (int(m.group(1)), float(m.group(2))) if m else (None, None)


def procedure_record(s: SessionData, regions: Sequence[str]) -> ProcedureRecord:
    """The procedure as recorded: structured fields from the session, nothing assumed."""
    details, rest = parse_technique(s.note)
    gauge = _float(details.get("needle gauge"))
    length = _float(details.get("needle length mm"))
    needle = details.get("needle")
    if gauge is None and length is None and needle:
        legacy_gauge, length = _legacy_needle(needle)
        gauge = float(legacy_gauge) if legacy_gauge is not None else None
    consent = details.get("consent")
    time_out = details.get("time-out")
    return ProcedureRecord(
        performed_at=s.performed_at,
        operator=s.operator,
        sites=[
            ProcedureSite(x.muscle, x.side, x.agent, x.concentration_percent, x.volume_ml, x.mg)
            for x in s.sites
        ],
        complications=list(s.complications),
        consent=None if consent is None else consent == "obtained",
        aspiration=details.get("aspiration"),
        twitch=details.get("twitch"),
        guidance=details.get("guidance"),
        needle=needle,
        needle_gauge=int(gauge) if gauge is not None else None,
        needle_length_mm=length,
        time_out=None if time_out is None else time_out == "done",
        lot_numbers=details.get("lot numbers"),
        vitals=details.get("vitals"),
        observation_minutes=_float(details.get("observation minutes")),
        handouts=[h for h in (details.get("handouts") or "").split(", ") if h],
        deviations=[d.text for d in s.deviations],
        dose_headline=s.dose.headline if s.dose else None,
        dose_exceeded=s.dose_exceeded,
        exceedance_reason=s.exceedance_reason,
        regions=list(regions),
        note=rest or None,
    )
