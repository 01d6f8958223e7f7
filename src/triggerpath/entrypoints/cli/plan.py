"""``triggerpath plan`` and ``triggerpath dose``: procedure planning and dose checks.

Registered on the main Typer app of :mod:`triggerpath.entrypoints.cli`. Exit codes
as everywhere: 0 whatever the clinical result (a dose that ``exceeds`` or a
``blocked`` plan is a result), 2 for bad input naming the flag or field, 3 for a
broken knowledge base. Text output leads with the level or status.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from triggerpath.domain.dosing import DoseCheck, DoseRequest, check_dose
from triggerpath.domain.numbers import bounded_decimal
from triggerpath.domain.planning import (
    ProcedurePlan,
    parse_plan_request,
    plan_from_request,
    plan_json_schema,
)
from triggerpath.domain.policy import DEFAULT_POLICY, Policy
from triggerpath.domain.validation import problems_from
from triggerpath.entrypoints.cli.app import (
    AsOfOpt,
    Format,
    FormatOpt,
    app,
    emit_json,
    knowledge_app,
    out,
    parse_date,
    read_json,
    schema_app,
    show,
    user_errors,
)
from triggerpath.entrypoints.render import (
    caution,
    cited,
    expected_course,
    footer,
    heading,
    ids,
    section,
)
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge import load_knowledge

LEVEL_STYLE = {"ok": "bold green", "caution": "bold yellow", "exceeds": "bold white on red"}
STATUS_STYLE = {
    "ready": "bold green",
    "needs_acknowledgement": "bold yellow",
    "blocked": "bold white on red",
    "refused": "bold red",
}
EPI_WORDS = {"epi", "epinephrine", "adrenaline", "e"}

PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="clinic policy file (JSON): dose_limit_source, dose_weight_basis, "
        "dose_caution_fraction, allow_non_marketed_strength …; default: the conservative policy",
    ),
]


# --------------------------------------------------------------------------- input helpers
def load_policy(path: Path | None) -> Policy:
    """The clinic policy from a JSON file, or the conservative default."""
    if path is None:
        return DEFAULT_POLICY
    data = read_json(path, field="--policy")
    if not isinstance(data, dict):
        raise InvalidInput.single("--policy", f"{path} must hold a JSON object of policy settings")
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        raise InvalidInput(problems_from(err, prefix="--policy")) from None


def _decimal(text: str, field: str, what: str) -> Decimal:
    """A number typed on the command line, bounded like every engine input."""
    raw = text.strip().rstrip("%").strip()
    if len(raw) > 40:
        raise InvalidInput.single(field, f"{what} {text[:40]!r}… is not a number")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput.single(field, f"{what} {text!r} is not a number") from None
    if not value.is_finite():
        raise InvalidInput.single(field, f"{what} {text!r} is not a number")
    try:
        return bounded_decimal(value)
    except ValueError as exc:
        raise InvalidInput.single(field, f"{what} {text!r} {exc}") from None


def parse_injectate(raw: str, n: int) -> dict[str, object]:
    """``AGENT:PERCENT:ML[:epi]`` -> a solution's fields (``n`` counts from 1 for messages)."""
    field = f"--injectate #{n} ({raw[:80]})"
    parts = raw.split(":")
    if len(parts) not in (3, 4) or not parts[0].strip():
        raise InvalidInput.single(field, "expected AGENT:PERCENT:ML or AGENT:PERCENT:ML:epi")
    epi = False
    if len(parts) == 4:
        if parts[3].strip().lower() not in EPI_WORDS:
            raise InvalidInput.single(field, f"the 4th part must be 'epi', got {parts[3][:20]!r}")
        epi = True
    return {
        "agent": parts[0].strip().lower(),
        "percent": _decimal(parts[1], field, "percent"),
        "ml": _decimal(parts[2], field, "volume"),
        "epinephrine": epi,
    }


def parse_prior(raw: str, n: int) -> dict[str, object]:
    """``AGENT:MG`` -> the fields of a dose of the last 24 hours."""
    field = f"--prior-24h #{n} ({raw[:80]})"
    parts = raw.split(":")
    if len(parts) != 2 or not parts[0].strip():
        raise InvalidInput.single(field, "expected AGENT:MG, e.g. bupivacaine:100")
    return {"agent": parts[0].strip().lower(), "mg": _decimal(parts[1], field, "dose (mg)")}


def _dose_request(data: dict[str, object], injectates: list[str], prior: list[str]) -> DoseRequest:
    """The dose request from the parsed flags; schema problems named by the flag typed."""
    try:
        return DoseRequest.model_validate(data)
    except ValidationError as err:
        problems = problems_from(err)
    raise InvalidInput([_cli_field(p, injectates, prior) for p in problems]) from None


def _cli_field(problem: FieldProblem, injectates: list[str], prior: list[str]) -> FieldProblem:
    """A dose-request field path as the flag the user typed."""
    f = problem.field
    counts = {"solutions": "--injectate", "prior_24h": "--prior-24h"}
    if f in counts:  # the list itself (e.g. too many entries)
        return FieldProblem(counts[f], problem.reason)
    for prefix, flag, raws in (
        ("solutions[", "--injectate", injectates),
        ("prior_24h[", "--prior-24h", prior),
    ):
        if f.startswith(prefix):
            index_text, _, rest = f[len(prefix) :].partition("]")
            i = int(index_text)
            what = rest.lstrip(".")
            return FieldProblem(f"{flag} #{i + 1} ({raws[i]}) {what}".rstrip(), problem.reason)
    names = {"weight_kg": "--weight-kg", "height_cm": "--height-cm", "sex": "--sex"}
    return FieldProblem(names.get(f, f), problem.reason)


def _check_counts(injectates: list[str], priors: list[str]) -> None:
    """Refuse more entries than a dose request holds, before parsing any of them."""
    sol_max = DoseRequest.model_fields["solutions"].metadata
    problems: list[FieldProblem] = []
    for flag, raws, most in (
        ("--injectate", injectates, _max_length(sol_max)),
        ("--prior-24h", priors, _max_length(DoseRequest.model_fields["prior_24h"].metadata)),
    ):
        if most is not None and len(raws) > most:
            problems.append(FieldProblem(flag, f"at most {most} entries, got {len(raws)}"))
    if problems:
        raise InvalidInput(problems)


def _max_length(metadata: list[object]) -> int | None:
    """The ``max_length`` constraint of a field (the schema is the one source)."""
    for m in metadata:
        most = getattr(m, "max_length", None)
        if isinstance(most, int):
            return most
    return None


# --------------------------------------------------------------------------- commands
@app.command("dose")
@user_errors
def dose(
    weight_kg: Annotated[str, typer.Option("--weight-kg", help="actual body weight in kg")],
    injectate: Annotated[
        list[str],
        typer.Option(
            "--injectate",
            help="AGENT:PERCENT:ML[:epi], e.g. lidocaine:1:20 or bupivacaine:0.25:10:epi "
            "(repeat for mixtures)",
        ),
    ],
    prior_24h: Annotated[
        list[str] | None,
        typer.Option("--prior-24h", help="AGENT:MG given in the last 24 hours (repeatable)"),
    ] = None,
    height_cm: Annotated[
        str | None, typer.Option("--height-cm", help="height (for ideal or lean weight)")
    ] = None,
    sex: Annotated[
        str | None, typer.Option("--sex", help="female|male|other|unknown (for ideal/lean weight)")
    ] = None,
    allow_non_marketed: Annotated[
        bool,
        typer.Option("--allow-non-marketed", help="accept strengths that are not marketed"),
    ] = False,
    policy: PolicyOpt = None,
    format: FormatOpt = Format.text,
) -> None:
    """Check local anesthetic totals against every limit: level ok, caution or exceeds."""
    kb = load_knowledge()
    pol = load_policy(policy)
    if allow_non_marketed:
        pol = pol.model_copy(update={"allow_non_marketed_strength": True})
    priors = prior_24h or []
    problems: list[FieldProblem] = []
    solutions: list[dict[str, object]] = []
    ledger: list[dict[str, object]] = []
    _check_counts(injectate, priors)
    for n, raw in enumerate(injectate, start=1):
        try:
            solutions.append(parse_injectate(raw, n))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    for n, raw in enumerate(priors, start=1):
        try:
            ledger.append(parse_prior(raw, n))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    weight: Decimal | None = None
    height: Decimal | None = None
    try:
        weight = _decimal(weight_kg, "--weight-kg", "weight")
    except InvalidInput as exc:
        problems.extend(exc.problems)
    if height_cm is not None:
        try:
            height = _decimal(height_cm, "--height-cm", "height")
        except InvalidInput as exc:
            problems.extend(exc.problems)
    sexes = ("female", "male", "other", "unknown")
    if sex is not None and sex.lower() not in sexes:
        problems.append(FieldProblem("--sex", f"must be one of {', '.join(sexes)}"))
    if problems or weight is None:
        raise InvalidInput(problems)
    request = _dose_request(
        {
            "weight_kg": weight,
            "height_cm": height,
            "sex": sex.lower() if sex else None,
            "solutions": solutions,
            "prior_24h": ledger,
        },
        list(injectate),
        priors,
    )
    try:
        result = check_dose(request, kb, policy=pol)
    except InvalidInput as exc:
        raise InvalidInput([_cli_field(p, list(injectate), priors) for p in exc.problems]) from None
    show(result, format, lambda: render_dose(result))


@app.command("plan")
@user_errors
def plan(
    file: Annotated[
        Path, typer.Argument(help="JSON plan file: assessment, targets, injectate choice")
    ],
    format: FormatOpt = Format.text,
    as_of: AsOfOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Plan TPIs for each target: technique, totals with the dose check, checklist, follow-up."""
    kb = load_knowledge()
    when = parse_date(as_of)
    pol = load_policy(policy)
    request = parse_plan_request(read_json(file, expect="plan"), kb)
    result = plan_from_request(request, kb, as_of=when, policy=pol)
    show(result, format, lambda: render_plan(result, title=str(file)))


@schema_app.command("plan")
@user_errors
def schema_plan() -> None:
    """Print the JSON Schema of the plan file."""
    emit_json(plan_json_schema(load_knowledge()))


@knowledge_app.command("injectates")
@user_errors
def knowledge_injectates(format: FormatOpt = Format.text) -> None:
    """The local anesthetic limit table with its sources, steroids and alternatives."""
    kb = load_knowledge()
    inj = kb.injectates
    if format is Format.json:
        emit_json(inj.model_dump(mode="json"))
        return
    t = Table(title=f"Local anesthetic dose limits (knowledge {kb.version})")
    for col in ("agent", "form", "source", "mg/kg", "cap mg", "24 h mg", "marketed %"):
        t.add_column(col)
    for la in inj.local_anesthetics:
        daily = {d.source: d.max_mg for d in la.limits_24h}
        for epi in (False, True):
            for e in la.form_limits(epi):
                t.add_row(
                    la.id,
                    "with epinephrine" if epi else "plain",
                    e.source,
                    _s(e.mg_per_kg),
                    _s(e.max_mg),
                    _s(daily.get(e.source)),
                    ", ".join(_s(p) for p in la.marketed(epi)),
                )
    out.print(t)
    for src in inj.sources:
        out.print(f"[bold]{src.id}[/]: {src.reference.strip()}", highlight=False)
    for conv in (inj.single_dose_rule, inj.mixture_convention, inj.unlabelled_24h_rule):
        out.print(f"\n[bold]{conv.name}[/] {ids(list(conv.statement_ids))}")
        out.print(conv.text.strip(), highlight=False)
    cs = inj.corticosteroids
    out.print(
        f"\n[bold]Corticosteroids[/] {_s(cs.dose_mg_min)}-{_s(cs.dose_mg_max)} mg "
        f"{ids(list(cs.statement_ids))}: " + ", ".join(a.name for a in cs.agents)
    )
    for alt in inj.alternatives:
        out.print(f"[bold]{alt.name}[/] {ids(list(alt.statement_ids))}: {alt.text.strip()}")


# --------------------------------------------------------------------------- rendering
def _s(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def _pct(value: Decimal) -> str:
    return f"{_s(value * 100)}%"


def render_dose(result: DoseCheck, *, title: str = "TriggerPath dose check") -> RenderableType:
    """Level first, then the per-agent figures, the 24-hour ledger and the reasons."""
    parts: list[RenderableType] = []
    head = Text()
    head.append(f" {result.level.upper()} ", style=LEVEL_STYLE[result.level])
    head.append(f"  {result.headline}")
    parts.append(head)
    w = result.weight
    parts.append(
        Text(
            f"\nWeight used: {_s(w.kg)} kg ({w.basis}). {w.reason} Limits: {result.limit_source}.",
            style="dim",
        )
    )
    t = Table(title="This procedure", expand=False)
    for col in ("agent", "mg", "max mg", "limited by", "of max", "level", "sources"):
        t.add_column(col)
    for a in result.agents:
        t.add_row(
            f"{a.name}{' + epi' if a.epinephrine else ''}",
            _s(a.mg),
            _s(a.max_mg),
            a.limited_by,
            _pct(a.fraction),
            Text(a.level, style=LEVEL_STYLE[a.level]),
            a.source_range,
        )
    parts.append(t)
    d = Table(title="Last 24 hours (this procedure included)", expand=False)
    for col in ("agent", "earlier mg", "now mg", "total mg", "max mg", "limit from", "of max"):
        d.add_column(col)
    for x in result.daily:
        d.add_row(
            x.name,
            _s(x.prior_mg),
            _s(x.now_mg),
            _s(x.total_mg),
            _s(x.max_mg),
            x.max_source,
            _pct(x.fraction),
        )
    parts.append(d)
    s = Table(title="Solutions", expand=False)
    for col in ("solution", "mL", "mg/mL", "mg", "still allowed mL"):
        s.add_column(col)
    for sol in result.solutions:
        s.add_row(
            f"{sol.agent} {_s(sol.percent)}%{' + epi' if sol.epinephrine else ''}",
            _s(sol.ml),
            _s(sol.mg_per_ml),
            _s(sol.mg),
            _s(sol.remaining_ml),
        )
    parts.append(s)
    m = result.mixture
    parts.append(
        cited(
            f"{m.name}: this procedure {_pct(m.fraction_single)}, 24 hours {_pct(m.fraction_24h)}",
            m.statement_ids,
        )
    )
    parts.append(heading("Why"))
    for r in result.reasons:
        parts.append(cited(f"• {r.text}", r.statement_ids))
    tox = result.toxicity
    parts.append(Text(f"\nWatch for {tox.name}", style="bold underline"))
    parts.append(
        Text(
            f"Early: {', '.join(tox.early)}. Late: {', '.join(tox.late)}. {tox.response} "
            f"{ids(tox.statement_ids)}",
            style="yellow",
        )
    )
    parts.append(Text(f"\nKnowledge {result.knowledge_version}", style="dim italic"))
    return Panel(Group(*parts), title=title, expand=True)


def render_plan(plan: ProcedurePlan, *, title: str | None = None) -> RenderableType:
    """Status first, then why, the cards per target, the dose, checklist and follow-up."""
    parts: list[RenderableType] = []
    head = Text()
    head.append(f" {plan.status.upper()} ", style=STATUS_STYLE[plan.status])
    head.append(f"  {plan.headline}")
    parts.append(head)
    parts.append(Text(f"Assessment verdict: {plan.verdict}", style="dim"))
    parts.append(heading("Why"))
    for r in plan.reasons:
        parts.append(cited(f"• {r.text}", r.statement_ids))
    parts += section(
        "Notes",
        [cited(f"- {i.text}", i.statement_ids, "yellow") for i in plan.issues if not i.blocking],
    )
    ack = plan.acknowledgements
    if ack.required or ack.unmatched:
        parts.append(Text("\nAcknowledgements", style="bold underline"))
        for code in ack.required:
            mark = "✓" if code in ack.acknowledged else "✗"
            parts.append(Text(f"{mark} {code}", style="green" if mark == "✓" else "bold yellow"))
        for code in ack.unmatched:
            parts.append(Text(f"? {code} (matches no caution)", style="dim"))
    parts += section(
        "Cautions", [caution(c.text, c.action, c.statement_ids) for c in plan.cautions]
    )
    for card in plan.targets:
        lines = [
            f"Position: {card.position}",
            f"Landmarks: {card.landmarks}",
            f"Needle: {card.needle.text}; angle: {card.angle}",
            f"Guidance: {card.guidance.replace('_', ' ')} ({card.depth})",
            f"Approach: {card.approach}",
            f"Volume: {card.sites} site(s) x {_s(card.volume_ml_per_site)} mL = "
            f"{_s(card.volume_ml)} mL ({card.volume_range_ml})",
        ]
        lines += [f"{st.title}: {st.text} {ids(st.statement_ids)}" for st in card.steps]
        lines += [f"Hazard — {h.name}: {h.precaution} {ids(h.statement_ids)}" for h in card.hazards]
        parts.append(
            Panel(
                Text("\n".join(lines)),
                title=f"{card.name} ({card.side}) {ids(card.statement_ids)}",
                expand=True,
            )
        )
    if plan.injectate is not None:
        parts.append(Text("\nInjectate", style="bold underline"))
        parts.append(cited(f"{plan.injectate.text}", plan.injectate.statement_ids))
        for sol in plan.injectate.solutions:
            epi = " with epinephrine" if sol.epinephrine else ""
            parts.append(
                Text(
                    f"  {sol.name} {_s(sol.percent)}%{epi}: draw {_s(sol.ml)} mL "
                    f"({_s(sol.mg)} mg); onset {sol.onset}; "
                    f"duration {sol.duration}. Preservative-free: "
                    f"{'; '.join(sol.preservative_free)}"
                )
            )
    if plan.dose is not None:
        parts.append(render_dose(plan.dose, title="Dose check"))
    if plan.steroid is not None:
        st = plan.steroid
        parts.append(Text(f"\nCorticosteroid: {st.status}", style="bold underline"))
        parts.append(cited(f"{st.text} {st.caveat}", st.statement_ids))
    parts += section(
        "Before the procedure",
        [cited(f"□ {i.title}: {i.text}", i.statement_ids) for i in plan.checklist],
    )
    parts += section("Materials", [cited(f"- {m.name}", m.statement_ids) for m in plan.materials])
    parts += expected_course(plan.expected_course, plan.expected_course.relief.strip())
    if plan.reassessment is not None:
        ra = plan.reassessment
        parts.append(
            cited(
                f"Reassess between {ra.earliest.isoformat()} and {ra.latest.isoformat()}.",
                ra.statement_ids,
            )
        )
    parts.append(heading("Alternatives"))
    for alt in plan.alternatives:
        parts.append(cited(f"- {alt.title}: {alt.text}", alt.statement_ids, "dim"))
    parts.append(footer(plan.knowledge_version, plan.as_of, plan.disclaimer))
    return Panel(Group(*parts), title=title or "TriggerPath procedure plan", expand=True)
