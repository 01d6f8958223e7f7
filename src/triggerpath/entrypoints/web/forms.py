"""HTML forms to engine inputs and back, keeping every typed value and every problem's field.

Form fields are named by the input's own dotted paths (``patient.age_years``,
``trigger_points[0].taut_band``), so a problem the engine reports for a path is shown beside
the field of that name. Parsing never raises: it returns the parsed input (or None) and the
problems; the page is then rendered again with what was typed.

Three-valued findings are radio groups: ``yes`` (true), ``no`` (false) and ``unknown``
(not examined, null: the engine lists it under ``needs`` and never guesses it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from triggerpath.domain.assessment import (
    Assessment,
    Cause,
    Contraindications,
    PainGenerators,
    RedFlags,
    TriggerPointFinding,
)
from triggerpath.domain.dosing import PriorDose
from triggerpath.domain.numbers import bounded_decimal
from triggerpath.domain.planning import Injectate, SteroidChoice, Target
from triggerpath.domain.validation import check_ids, problems_from
from triggerpath.errors import FieldProblem
from triggerpath.knowledge.loader import Knowledge
from triggerpath.knowledge.schema import REGIONS
from triggerpath.services.episodes import technique_line as technique_line

#: What a form posts: one or several values per name.
Values = dict[str, str | list[str]]
TRI = {"yes": True, "no": False}
TP_FINDINGS = (
    "taut_band",
    "hypersensitive_spot",
    "recognised_pain",
    "referred_pain",
    "local_twitch_response",
    "reduced_rom",
)
CAUSES: tuple[str, ...] = get_args(Cause)
IMPACTS = ("none", "mild", "moderate", "severe")
RESPONSES = ("none", "partial", "good", "not_tolerated")
MAX_ROWS = 40


def values_of(form: Any) -> Values:
    """A plain dict of the posted form (lists for repeated names)."""
    out: Values = {}
    for key in form:
        items = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = items if len(items) > 1 or key in _MULTI else (items[0] if items else "")
    return out


_MULTI = {"regions", "causes", "acknowledged_cautions", "complications", "handouts"}


def one(values: Mapping[str, Any], name: str) -> str:
    v = values.get(name, "")
    if isinstance(v, list):
        return str(v[0]) if v else ""
    return str(v).strip()


def many(values: Mapping[str, Any], name: str) -> list[str]:
    v = values.get(name, [])
    return [str(x) for x in v] if isinstance(v, list) else ([str(v)] if v else [])


@dataclass
class Parsed:
    """What a form parsing produced: problems by field name and the data built."""

    problems: list[FieldProblem] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, reason: str) -> None:
        self.problems.append(FieldProblem(name, reason))

    def errors(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for p in self.problems:
            out.setdefault(p.field, []).append(p.reason)
        return out


def _number(parsed: Parsed, values: Mapping[str, Any], name: str, *, whole: bool) -> Any:
    raw = one(values, name)
    if raw == "":
        return None
    try:
        num = Decimal(raw.replace(",", "."))
    except InvalidOperation:
        parsed.add(name, "enter a number" if not whole else "enter a whole number")
        return None
    if not num.is_finite():
        parsed.add(name, "enter a number")
        return None
    try:  # the engine's one bound on numbers (int() of 1e999999999 would never end)
        num = bounded_decimal(num)
    except ValueError as exc:
        parsed.add(name, f"the number {exc}")
        return None
    if whole:
        if num != num.to_integral_value():
            parsed.add(name, "enter a whole number")
            return None
        return int(num)
    return num


def _tri(values: Mapping[str, Any], name: str) -> bool | None:
    return TRI.get(one(values, name))


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


# --------------------------------------------------------------------------- assessment
@dataclass(frozen=True)
class TriField:
    name: str
    label: str
    hint: str | None


def _label(name: str) -> str:
    text = name.replace("_", " ")
    return text[0].upper() + text[1:]


def _hint(description: str | None) -> str | None:
    """A field's own description (not the generic one of every three-valued finding)."""
    if description is None or description.startswith("true = present"):
        return None
    return description


def tri_fields(model: type[BaseModel], prefix: str) -> list[TriField]:
    """The three-valued findings of a model (from its schema), as form fields."""
    out: list[TriField] = []
    for name, info in model.model_fields.items():
        if info.annotation == (bool | None):
            out.append(TriField(f"{prefix}.{name}", _label(name), _hint(info.description)))
    return out


def test_fields(model: type[BaseModel], prefix: str) -> list[TriField]:
    """Test results (true only when done and positive) of a model, as checkboxes."""
    out: list[TriField] = []
    for name, info in model.model_fields.items():
        if info.annotation is bool:
            out.append(TriField(f"{prefix}.{name}", _label(name), info.description))
    return out


@dataclass(frozen=True)
class Group:
    title: str
    tri: list[TriField]
    tests: list[TriField]
    numbers: list[TriField]


def generator_groups() -> list[Group]:
    groups: list[Group] = []
    for name, info in PainGenerators.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        prefix = f"pain_generators.{name}"
        numbers = [
            TriField(f"{prefix}.{n}", _label(n), i.description)
            for n, i in model.model_fields.items()
            if i.annotation == (int | None)
        ]
        groups.append(
            Group(_label(name), tri_fields(model, prefix), test_fields(model, prefix), numbers)
        )
    return groups


RED_FLAGS = tri_fields(RedFlags, "red_flags")
CONTRAINDICATIONS = tri_fields(Contraindications, "contraindications")
TP_LABELS = {
    name: (_hint(info.description) or _label(name))
    for name, info in TriggerPointFinding.model_fields.items()
    if name in TP_FINDINGS
}


def tp_rows(values: Mapping[str, Any]) -> list[int]:
    """Trigger point rows that name a muscle (blank rows are not shown again)."""
    return [i for i in tp_indices(values) if one(values, f"trigger_points[{i}].muscle")]


def tp_indices(values: Mapping[str, Any]) -> list[int]:
    found = set()
    for key in values:
        m = re.match(r"^trigger_points\[(\d+)\]\.muscle$", key)
        if m and int(m.group(1)) < MAX_ROWS:
            found.add(int(m.group(1)))
    return sorted(found)


def parse_assessment_form(
    values: Mapping[str, Any], kb: Knowledge
) -> tuple[Assessment | None, date | None, Parsed]:
    """The assessment and its date from the form, or None with every problem by field."""
    p = Parsed()
    data: dict[str, Any] = {}
    age = _number(p, values, "patient.age_years", whole=True)
    _set(data, "patient.age_years", age)
    _set(data, "patient.sex", one(values, "patient.sex") or None)
    for name in ("patient.weight_kg", "patient.height_cm"):
        num = _number(p, values, name, whole=False)
        if num is not None:
            _set(data, name, str(num))
    _set(data, "patient.pregnant", _tri(values, "patient.pregnant"))
    data["regions"] = [r for r in many(values, "regions") if r in REGIONS]
    if not data["regions"]:
        p.add("regions", "choose at least one region")
    for name, whole in (("pain.duration_weeks", False), ("pain.nrs", True)):
        num = _number(p, values, name, whole=whole)
        if num is not None:
            _set(data, name, float(num) if not whole else num)
    for name in ("pain.constant", "pain.widespread", "pain.headache"):
        _set(data, name, _tri(values, name))
    impact = one(values, "pain.daily_activity_impact")
    _set(data, "pain.daily_activity_impact", impact or None)
    data["causes"] = [c for c in many(values, "causes") if c in CAUSES]

    tps: list[dict[str, Any]] = []
    for i in tp_indices(values):
        pre = f"trigger_points[{i}]"
        muscle = one(values, f"{pre}.muscle")
        if not muscle:
            continue
        tp: dict[str, Any] = {"muscle": muscle, "side": one(values, f"{pre}.side") or None}
        for f in TP_FINDINGS:
            tp[f] = _tri(values, f"{pre}.{f}")
        tps.append(tp)
    # the engine's paths index the list as sent; keep the form's own indices for problems
    tp_names = [i for i in tp_indices(values) if one(values, f"trigger_points[{i}].muscle")]
    data["trigger_points"] = tps

    for group in generator_groups():
        for tf in group.tri:
            _set(data, tf.name, _tri(values, tf.name))
        for tf in group.tests:
            _set(data, tf.name, one(values, tf.name) == "on")
        for tf in group.numbers:
            _set(data, tf.name, _number(p, values, tf.name, whole=True))
    for tf in [*RED_FLAGS, *CONTRAINDICATIONS]:
        _set(data, tf.name, _tri(values, tf.name))

    care_rows: list[str] = []
    if one(values, "conservative_care.recorded") == "on":
        care: list[dict[str, Any]] = []
        for modality in kb.modality_ids:
            weeks = _number(p, values, f"conservative_care.{modality}.weeks", whole=False)
            response = one(values, f"conservative_care.{modality}.response")
            if weeks is None and not response:
                continue
            care.append(
                {
                    "modality": modality,
                    "weeks": float(weeks) if weeks is not None else None,
                    "response": response or None,
                }
            )
            care_rows.append(modality)
        data["conservative_care"] = care
    else:
        data["conservative_care"] = None
    if one(values, "medications.reviewed") == "on":
        meds = []
        for line in one(values, "medications.text").splitlines():
            name = line.strip()
            if not name:
                continue
            stopped = name.lower().endswith("(stopped)")
            meds.append({"name": name.removesuffix("(stopped)").strip(), "active": not stopped})
        data["medications"] = meds
    else:
        data["medications"] = None

    as_of: date | None = None
    raw_date = one(values, "as_of")
    if raw_date:
        try:
            as_of = date.fromisoformat(raw_date)
        except ValueError:
            p.add("as_of", "enter a date (YYYY-MM-DD)")

    def form_name(path: str) -> str:
        m = re.match(r"^trigger_points\[(\d+)\](.*)$", path)
        if m and int(m.group(1)) < len(tp_names):
            return f"trigger_points[{tp_names[int(m.group(1))]}]{m.group(2)}"
        m = re.match(r"^conservative_care\[(\d+)\]\.(\w+)$", path)
        if m and int(m.group(1)) < len(care_rows):
            return f"conservative_care.{care_rows[int(m.group(1))]}.{m.group(2)}"
        if path.startswith("medications"):
            return "medications.text"
        return path

    assessment: Assessment | None = None
    try:
        assessment = Assessment.model_validate(data)
    except ValidationError as err:
        for prob in problems_from(err):
            if not any(q.field == form_name(prob.field) for q in p.problems):
                p.add(form_name(prob.field), _friendly(prob.reason))
    if assessment is not None:
        for prob in check_ids(assessment, kb):
            p.add(form_name(prob.field), prob.reason)
    if p.problems:
        return None, as_of, p
    return assessment, as_of, p


def _friendly(reason: str) -> str:
    """Pydantic's messages, said for a form."""
    reason = reason.replace(
        "Input should be a valid integer, unable to parse string as an integer",
        "enter a whole number",
    )
    if reason.startswith("Input should be "):
        reason = "should be " + reason.removeprefix("Input should be ")
    if reason == "Field required":
        return "required"
    return reason


def assessment_values(a: Assessment, as_of: date | None = None) -> Values:
    """The form values that show an existing assessment (to start a new one from it)."""
    v: Values = {}

    def put(name: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            v[name] = "yes" if value else "no"
        else:
            v[name] = str(value)

    put("patient.age_years", a.patient.age_years)
    v["patient.sex"] = a.patient.sex
    put("patient.weight_kg", a.patient.weight_kg)
    put("patient.height_cm", a.patient.height_cm)
    put("patient.pregnant", a.patient.pregnant)
    v["regions"] = list(a.regions)
    for name in ("duration_weeks", "nrs", "constant", "widespread", "headache"):
        put(f"pain.{name}", getattr(a.pain, name))
    put("pain.daily_activity_impact", a.pain.daily_activity_impact)
    v["causes"] = list(a.causes)
    for i, tp in enumerate(a.trigger_points):
        v[f"trigger_points[{i}].muscle"] = tp.muscle
        v[f"trigger_points[{i}].side"] = tp.side
        for f in TP_FINDINGS:
            put(f"trigger_points[{i}].{f}", getattr(tp, f))
    for group in generator_groups():
        for tf in [*group.tri, *group.numbers]:
            put(tf.name, _get(a, tf.name))
        for tf in group.tests:
            if _get(a, tf.name):
                v[tf.name] = "on"
    for tf in [*RED_FLAGS, *CONTRAINDICATIONS]:
        put(tf.name, _get(a, tf.name))
    if a.conservative_care is not None:
        v["conservative_care.recorded"] = "on"
        for c in a.conservative_care:
            put(f"conservative_care.{c.modality}.weeks", c.weeks)
            put(f"conservative_care.{c.modality}.response", c.response)
    if a.medications is not None:
        v["medications.reviewed"] = "on"
        v["medications.text"] = "\n".join(
            m.name + ("" if m.active else " (stopped)") for m in a.medications
        )
    if as_of:
        v["as_of"] = as_of.isoformat()
    return v


def _get(model: Any, path: str) -> Any:
    node = model
    for k in path.split("."):
        node = getattr(node, k)
    return node


# --------------------------------------------------------------------------- planner
@dataclass
class PlanForm:
    targets: list[Target]
    injectate: Injectate | None
    prior_24h: list[PriorDose]
    acknowledged: list[str]
    steroid: SteroidChoice | None


def _rows(values: Mapping[str, Any], prefix: str, key: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(prefix)}\[(\d+)\]\.{key}$")
    found = {int(m.group(1)) for k in values if (m := pattern.match(k))}
    return sorted(i for i in found if i < MAX_ROWS)


def parse_plan_form(values: Mapping[str, Any]) -> tuple[PlanForm | None, Parsed]:
    """Targets, injectate, earlier doses and acknowledgements from the planner form."""
    p = Parsed()
    targets: list[Target] = []
    for i in _rows(values, "targets", "muscle"):
        pre = f"targets[{i}]"
        muscle = one(values, f"{pre}.muscle")
        if not muscle:
            continue
        sites = _number(p, values, f"{pre}.sites", whole=True)
        vol = _number(p, values, f"{pre}.volume_ml_per_site", whole=False)
        try:
            targets.append(
                Target.model_validate(
                    {
                        "muscle": muscle,
                        "side": one(values, f"{pre}.side") or "left",
                        "sites": sites if sites is not None else 1,
                        "volume_ml_per_site": vol,
                    }
                )
            )
        except ValidationError as err:
            for prob in problems_from(err, pre):
                p.add(prob.field, _friendly(prob.reason))
    if not targets:
        p.add("targets", "pick at least one target on the body map")
    solutions: list[dict[str, Any]] = []
    for i in _rows(values, "injectate.solutions", "agent"):
        pre = f"injectate.solutions[{i}]"
        agent = one(values, f"{pre}.agent")
        if not agent:
            continue
        percent = _number(p, values, f"{pre}.percent", whole=False)
        parts = _number(p, values, f"{pre}.parts", whole=False)
        if percent is None:
            p.add(f"{pre}.percent", "choose a strength")
            continue
        solutions.append(
            {
                "agent": agent,
                "percent": percent,
                "epinephrine": one(values, f"{pre}.epinephrine") == "on",
                "parts": parts if parts is not None else Decimal(1),
            }
        )
    saline = _number(p, values, "injectate.saline_parts", whole=False)
    injectate: Injectate | None = None
    if not solutions:
        p.add("injectate.solutions[0].agent", "choose a local anesthetic")
    else:
        try:
            injectate = Injectate.model_validate(
                {"solutions": solutions, "saline_parts": saline if saline is not None else 0}
            )
        except ValidationError as err:
            for prob in problems_from(err, "injectate"):
                p.add(prob.field, _friendly(prob.reason))
    prior: list[PriorDose] = []
    for i in _rows(values, "prior_24h", "agent"):
        pre = f"prior_24h[{i}]"
        agent = one(values, f"{pre}.agent")
        mg = _number(p, values, f"{pre}.mg", whole=False)
        if not agent and mg is None:
            continue
        if not agent:
            p.add(f"{pre}.agent", "choose the agent given")
            continue
        if mg is None:
            p.add(f"{pre}.mg", "enter the mg given")
            continue
        prior.append(PriorDose(agent=agent, mg=mg))
    steroid: SteroidChoice | None = None
    steroid_agent = one(values, "steroid.agent")
    if steroid_agent:
        mg = _number(p, values, "steroid.mg", whole=False)
        if mg is None:
            p.add("steroid.mg", "enter the steroid dose in mg")
        else:
            steroid = SteroidChoice(agent=steroid_agent, mg=mg)
    acknowledged = many(values, "acknowledged_cautions")
    if p.problems:
        return None, p
    return PlanForm(targets, injectate, prior, acknowledged, steroid), p


def plan_values(request: Mapping[str, Any]) -> Values:
    """Planner form values from a stored plan request (JSON)."""
    v: Values = {}
    for i, t in enumerate(request.get("targets", [])):
        for k in ("muscle", "side", "sites", "volume_ml_per_site"):
            if t.get(k) is not None:
                v[f"targets[{i}].{k}"] = str(t[k])
    inj = request.get("injectate") or {}
    for i, s in enumerate(inj.get("solutions", [])):
        for k in ("agent", "percent", "parts"):
            v[f"injectate.solutions[{i}].{k}"] = str(s.get(k, ""))
        if s.get("epinephrine"):
            v[f"injectate.solutions[{i}].epinephrine"] = "on"
    v["injectate.saline_parts"] = str(inj.get("saline_parts", 0))
    for i, d in enumerate(request.get("prior_24h", [])):
        v[f"prior_24h[{i}].agent"] = str(d["agent"])
        v[f"prior_24h[{i}].mg"] = str(d["mg"])
    v["acknowledged_cautions"] = list(request.get("acknowledged_cautions", []))
    steroid = request.get("steroid") or {}
    if steroid.get("agent"):
        v["steroid.agent"] = str(steroid["agent"])
        v["steroid.mg"] = str(steroid.get("mg", ""))
    return v


# --------------------------------------------------------------------------- session
ASPIRATION = {
    "negative": "negative before every injection",
    "repositioned": "blood returned; needle repositioned and aspiration repeated",
    "not_done": "not done",
}
TWITCH = {"yes": "elicited", "no": "not elicited", "unknown": "not noted"}
GUIDANCE = {"palpation": "palpation (landmarks)", "ultrasound": "ultrasound"}
YES_NO = {"yes": "done", "no": "not done"}
HANDOUTS = {"aftercare": "after-care sheet", "exercises": "home exercise sheet"}


def parse_datetime_local(raw: str, offset_minutes: str) -> datetime | None:
    """A ``datetime-local`` value with the browser's UTC offset (minutes, JS sign)."""
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError:
        return None
    try:
        offset = int(offset_minutes or "0")
    except ValueError:
        offset = 0
    if naive.tzinfo is not None:
        return naive
    # JS getTimezoneOffset(): minutes to add to local time to get UTC
    return (naive + timedelta(minutes=offset)).replace(tzinfo=UTC)


def parse_answers(
    p: Parsed, values: Mapping[str, Any], name: str, count: int
) -> list[int | None] | None:
    """Questionnaire answers ``name[0]``..; None when every item is empty."""
    answers: list[int | None] = []
    for i in range(count):
        answers.append(_number(p, values, f"{name}[{i}]", whole=True))
    if all(a is None for a in answers):
        return None
    return answers


def number(p: Parsed, values: Mapping[str, Any], name: str, *, whole: bool = False) -> Any:
    return _number(p, values, name, whole=whole)


def lines(items: Iterable[str]) -> Sequence[str]:
    return [i for i in items if i]


# --------------------------------------------------------------------------- plain words
#: Field names as a person reads them; anything else is humanised from its path.
FIELD_LABELS = {
    "pain.nrs": "Pain now (NRS 0-10)",
    "pre_nrs": "Pain before the injection (NRS 0-10)",
    "nrs": "Pain now (NRS 0-10)",
    "performed_at": "Date and time of the procedure",
    "measured_on": "Date of the follow-up",
    "relief_days": "Relief lasted (days)",
    "relation": "Measured before or after the session",
    "session_id": "Session",
    "patient.weight_kg": "Weight (kg)",
    "patient.height_cm": "Height (cm)",
    "patient.age_years": "Age (years)",
    "as_of": "Assessment date",
    "targets": "Targets",
    "injectate": "Injectate",
    "prior_24h": "Local anesthetic in the last 24 hours",
    "plan": "Plan",
    "consent": "Informed consent",
    "confirm_copied": "Confirmation of copied findings",
    "exceedance_reason": "Reason for exceeding the dose limit",
    "sites": "Sites injected",
    "needle_gauge": "Needle gauge (G)",
    "needle_length_mm": "Needle length (mm)",
    "observation_minutes": "Observed for (minutes)",
    "sex": "Sex",
    "onset": "Symptom onset",
    "episode_note": "Episode note",
    "steroid": "Corticosteroid",
    "steroid.agent": "Corticosteroid",
    "steroid.mg": "Corticosteroid dose (mg)",
    "mbb.date": "Date of the block",
    "mbb.level": "Level and side",
    "mbb.relief_pct": "Relief of the index pain (%)",
    "conclusion": "Conclusion and next step",
    "worksheet": "Re-evaluation worksheet",
}
_ROW_WORDS = {
    "targets": "Target",
    "sites": "Site",
    "trigger_points": "Trigger point",
    "solutions": "Solution",
    "prior_24h": "Earlier dose",
    "conservative_care": "Conservative care",
}
_WORDS = {
    "nrs": "pain score (NRS)",
    "volume_ml": "volume (mL)",
    "volume_ml_per_site": "volume per site (mL)",
    "concentration_percent": "strength (%)",
    "percent": "strength (%)",
    "mg": "dose (mg)",
    "odi": "Oswestry Disability Index",
    "ndi": "Neck Disability Index",
    "peg": "PEG",
    "startback": "STarT Back",
    "checked": "checked",
    "finding": "finding",
}
#: prefixes the safety kernel and the API may put before a form's own field name
_FOREIGN_PREFIXES = ("input.", "body.", "assessment.input.")


def form_field(path: str) -> str:
    """The form field a refusal's field path points at (``input.pain.nrs`` -> ``pain.nrs``)."""
    for prefix in _FOREIGN_PREFIXES:
        if path.startswith(prefix):
            return path.removeprefix(prefix)
    return path


def plain_field(path: str) -> str:
    """A field path in plain words, for people (never ``input.pain.nrs``)."""
    name = form_field(path)
    if name in FIELD_LABELS:
        return FIELD_LABELS[name]
    parts: list[str] = []
    for seg in name.split("."):
        m = re.fullmatch(r"(\w+)\[(\d+)\]", seg)
        if m and m.group(1) in _ROW_WORDS:
            parts.append(f"{_ROW_WORDS[m.group(1)]} {int(m.group(2)) + 1}")
        elif m:
            parts.append(
                f"{_WORDS.get(m.group(1), m.group(1).replace('_', ' '))} item {int(m.group(2)) + 1}"
            )
        else:
            parts.append(_WORDS.get(seg, seg.replace("_", " ")))
    text = " – ".join(p for p in parts if p)
    return text[:1].upper() + text[1:]


def issue_errors(
    issues: Iterable[Any], known: Iterable[str], fallback: str = "plan"
) -> dict[str, list[str]]:
    """Refusals by the form field they concern: each issue's text with its statement ids,
    under every field it names that the form shows (else under ``fallback``)."""
    shown = set(known)
    out: dict[str, list[str]] = {}
    for issue in issues:
        ids = list(getattr(issue, "statement_ids", []) or [])
        text = str(getattr(issue, "text", issue)) + (f" ({', '.join(ids)})" if ids else "")
        fields = [form_field(f) for f in getattr(issue, "fields", []) or []]
        targets = [f for f in fields if f in shown] or [fallback]
        for f in targets:
            if text not in out.setdefault(f, []):
                out[f].append(text)
    return out


def refusal_errors(
    problems: Iterable[FieldProblem], rename: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """A refused write's problems by form field, in plain words: the reason, and the
    statement ids when the safety kernel's rule names them. ``rename`` maps a problem's
    field (after the kernel's prefixes are dropped) to the form's own field name."""
    out: dict[str, list[str]] = {}
    for p in problems:
        name = form_field(p.field)
        name = (rename or {}).get(name, name)
        ids = list(getattr(p, "statement_ids", ()) or ())
        text = _plain_reason(_friendly(p.reason)) + (f" ({', '.join(ids)})" if ids else "")
        if text not in out.setdefault(name, []):
            out[name].append(text)
    return out


def _plain_reason(reason: str) -> str:
    """A reason that names a field by its internal name says it in words instead."""
    for name, label in FIELD_LABELS.items():
        if "_" in name and name in reason:
            reason = reason.replace(name, f"the {label[:1].lower()}{label[1:]} field")
    return reason
