"""Pure scoring of the outcome instruments: NRS, PEG, ODI, NDI and STarT Back.

The numbers (item ranges, cut-offs, how many items may be missing) come from
``knowledge/data/instruments.yaml``, each with its publication; this module only
does the arithmetic the publications prescribe:

- ``nrs``: the single 0-10 answer; bands of Serlin 1995 (0 none, 1-4 mild, 5-6 moderate,
  7-10 severe).
- ``peg``: the mean of the three 0-10 items (Krebs 2009). No missing item allowed.
- ``odi`` (2.1a): total / (5 x sections answered) x 100 (Fairbank & Pynsent 2000); one missing
  section is left out of the denominator, two or more are refused. Bands 0-20 minimal,
  21-40 moderate, 41-60 severe, 61-80 crippled, 81-100 bed-bound.
- ``ndi``: raw total 0-50 and percentage over the items answered (Vernon & Mior 1991); one
  missing item as for the ODI. Bands read the raw score (prorated to 50 when an item is
  missing): 0-4 none, 5-14 mild, 15-24 moderate, 25-34 severe, over 34 complete.
- ``startback``: items 1-8 score 1 for agree, item 9 scores 1 for 'very much' (3) or
  'extremely' (4); total 0-9 and psychosocial subscale items 5-9 (Hill 2008): total 0-3 low risk,
  psychosocial 4-5 high risk, otherwise medium. No missing item allowed.

Bad answers raise :class:`~triggerpath.errors.InvalidInput` naming each answer
(``answers[3]: 7 is out of range 0-5``); a score is never computed from a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge.instruments import (
    INSTRUMENT_IDS,
    Band,
    Instrument,
    InstrumentId,
    InstrumentItem,
)
from triggerpath.knowledge.loader import Knowledge

Answer = int | None


class Score(BaseModel):
    """One scored questionnaire: the headline ``score`` and its ``band`` first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instrument: InstrumentId
    score: float = Field(description="headline number: ODI/NDI %, STarT Back total, PEG mean")
    band: str | None = Field(description="band or risk group id; null where none is published")
    band_name: str | None = None
    band_range: str | None = None
    name: str
    unit: str
    raw: int = Field(description="sum of the item scores answered (STarT Back: the total)")
    raw_max: int = Field(description="highest possible raw score with every item answered")
    band_value: float = Field(description="the value the band was read from")
    answered: int
    missing_items: list[int] = Field(
        default_factory=list, description="item numbers (1-based) left blank"
    )
    subscales: dict[str, int] = Field(default_factory=dict)
    matched_care: str | None = None
    scoring_rule: str
    missing_rule: str
    bands_note: str = ""
    references: list[str]


def parse_answers(text: str) -> list[Answer]:
    """``"2,2,,1"`` -> ``[2, 2, None, 1]``: an empty field is a missing item."""
    out: list[Answer] = []
    problems: list[FieldProblem] = []
    for i, part in enumerate(text.split(",")):
        part = part.strip()
        if not part:
            out.append(None)
            continue
        try:
            out.append(int(part))
        except ValueError:
            problems.append(FieldProblem(f"answers[{i}]", f"{part!r} is not a whole number"))
            out.append(None)
    if problems:
        raise InvalidInput(problems)
    return out


def instrument_of(
    instrument_id: str, knowledge: Knowledge, field: str = "INSTRUMENT"
) -> Instrument:
    if instrument_id not in INSTRUMENT_IDS:
        raise InvalidInput.single(
            field, f"unknown instrument {instrument_id!r}; known: {', '.join(INSTRUMENT_IDS)}"
        )
    return knowledge.instruments.instrument(instrument_id)


def _check(ins: Instrument, answers: Sequence[object], field: str) -> list[Answer]:
    """Every answer in range; the missing-item rule applied. All problems at once."""
    n = len(ins.items)
    if len(answers) != n:
        raise InvalidInput.single(
            field,
            f"{ins.id} has {n} item{'s' if n != 1 else ''}, got {len(answers)} answer"
            f"{'s' if len(answers) != 1 else ''} (leave a field empty for a missing item)",
        )
    problems: list[FieldProblem] = []
    values: list[Answer] = []
    for i, (item, value) in enumerate(zip(ins.items, answers, strict=True)):
        where = f"{field}[{i}]"
        if value is None:
            values.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(FieldProblem(where, f"{value!r} is not a whole number"))
            values.append(None)
            continue
        if not item.min <= value <= item.max:
            problems.append(
                FieldProblem(
                    where,
                    f"{value} is out of range {item.min}-{item.max} "
                    f"(item {item.number}: {item.label})",
                )
            )
        values.append(value)
    missing = [i for i, v in enumerate(answers) if v is None]
    if len(missing) > ins.missing.max_missing:
        if ins.missing.method == "refuse":
            problems.extend(
                FieldProblem(
                    f"{field}[{i}]",
                    f"missing (item {i + 1}: {ins.items[i].label}); {ins.missing.text}",
                )
                for i in missing
            )
        else:
            problems.append(
                FieldProblem(
                    field,
                    f"{len(missing)} items missing (items "
                    f"{', '.join(str(i + 1) for i in missing)}); at most "
                    f"{ins.missing.max_missing} may be missing: {ins.missing.text}",
                )
            )
    if problems:
        raise InvalidInput(problems)
    return values


def band_for(bands: Sequence[Band], value: float | Fraction) -> Band | None:
    """The highest band whose lower bound the value reaches."""
    found: Band | None = None
    for b in bands:
        if value >= b.min:
            found = b
    return found


Given = Sequence[tuple[InstrumentItem, int]]


@dataclass(frozen=True)
class _Tally:
    """The arithmetic's result: headline value, the value bands read, totals and group."""

    value: Fraction
    band_value: Fraction
    raw: int
    raw_max: int
    band: tuple[str, str, str] | None = None  # id, name, range; for a risk group here
    subscales: dict[str, int] = field(default_factory=dict)
    matched_care: str | None = None


def score(
    instrument_id: str,
    answers: Sequence[object],
    knowledge: Knowledge,
    *,
    field: str = "answers",
) -> Score:
    """Score one questionnaire by its published rules, or raise ``InvalidInput``."""
    ins = instrument_of(instrument_id, knowledge)
    values = _check(ins, answers, field)
    given = [(item, v) for item, v in zip(ins.items, values, strict=True) if v is not None]
    t = _startback(ins, given) if ins.scoring == "startback" else _tally(ins, given)
    band = t.band or _band_triple(band_for(ins.bands, t.band_value))
    return Score(
        instrument=ins.id,
        score=round(float(t.value), 2),
        band=band[0] if band else None,
        band_name=band[1] if band else None,
        band_range=band[2] if band else None,
        name=ins.name,
        unit=ins.unit,
        raw=t.raw,
        raw_max=t.raw_max,
        band_value=round(float(t.band_value), 2),
        answered=len(given),
        missing_items=[i + 1 for i, v in enumerate(values) if v is None],
        subscales=t.subscales,
        matched_care=t.matched_care,
        scoring_rule=ins.scoring_text.strip(),
        missing_rule=ins.missing.text.strip(),
        bands_note=ins.bands_note.strip(),
        references=list(ins.references),
    )


def _tally(ins: Instrument, given: Given) -> _Tally:
    """NRS and PEG: the mean of the items; ODI and NDI: percent of the items answered."""
    raw = sum(v for _, v in given)
    raw_max = sum(item.max for item in ins.items)
    if ins.scoring in ("single", "mean"):
        value = Fraction(raw, len(given))
        return _Tally(value, value, raw, raw_max)
    value = Fraction(raw * 100, sum(item.max for item, _ in given))
    band_value = value if ins.band_basis == "score" else value * raw_max / 100
    return _Tally(value, band_value, raw, raw_max)


def _startback(ins: Instrument, given: Given) -> _Tally:
    """STarT Back: items score 0/1, total and psychosocial subscale pick the risk group."""
    points = {item.number: int(v in item.positive_values) for item, v in given}
    raw = sum(points.values())
    subscales = {sub.id: sum(points[n] for n in sub.items) for sub in ins.subscales}
    rule = ins.risk_rule
    assert rule is not None  # guaranteed by the schema for startback
    if raw < rule.total_min_not_low:
        group_id = "low"
    elif subscales[rule.subscale] >= rule.subscale_min_high:
        group_id = "high"
    else:
        group_id = "medium"
    group = next(g for g in ins.risk_groups if g.id == group_id)
    return _Tally(
        value=Fraction(raw),
        band_value=Fraction(raw),
        raw=raw,
        raw_max=len(ins.items),
        band=(group.id, group.name, group.rule),
        subscales=subscales,
        matched_care=group.matched_care,
    )


def _band_triple(band: Band | None) -> tuple[str, str, str] | None:
    """A published band as (id, name, range), the shape a risk group also takes."""
    return (band.id, band.name, band.label) if band else None
