"""``triggerpath course`` and ``triggerpath score``: the treatment course at the command line.

Registered on the main Typer ``app`` of :mod:`triggerpath.entrypoints.cli` (imported at the
bottom of that module). These commands only translate: the decisions are made by
:mod:`triggerpath.domain.course`, :mod:`triggerpath.domain.scoring` and
:mod:`triggerpath.domain.reevaluation`, and rendered here as they are.

Exit codes as for every command: 0 success (whatever the clinical finding), 2 bad input
(each problem as ``field: reason``, e.g. ``answers[3]: 7 is out of range 0-5``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from triggerpath.domain.course import (
    CourseReport,
    Episode,
    SessionResult,
    evaluate_course,
    parse_episode,
)
from triggerpath.domain.recommendation import Caution
from triggerpath.domain.reevaluation import AblationDecision, Worksheet
from triggerpath.domain.scoring import Score, parse_answers
from triggerpath.domain.scoring import score as score_answers
from triggerpath.entrypoints.cli.app import (
    AsOfOpt,
    Format,
    FormatOpt,
    app,
    emit_json,
    parse_date,
    read_json,
    schema_app,
    show,
    user_errors,
)
from triggerpath.entrypoints.render import caution, cited, ids, section
from triggerpath.knowledge import load_knowledge

RESPONSE_STYLE = {
    "responder": "bold green",
    "partial": "bold yellow",
    "non_responder": "bold red",
    "relief_too_short": "bold red",
    None: "bold cyan",
}
STATUS_STYLE = {
    "flagged": "bold red",
    "present": "bold red",
    "suspected": "bold red",
    "not_recorded": "yellow",
    "unknown": "yellow",
    "not_examined": "yellow",
    "to_check": "cyan",
    "acceptable": "green",
    "absent": "green",
    "not_suspected": "green",
}


@app.command("score")
@user_errors
def score_command(
    instrument: Annotated[
        str, typer.Argument(metavar="INSTRUMENT", help="nrs, peg, odi, ndi or startback")
    ],
    answers: Annotated[
        str,
        typer.Option(
            "--answers",
            "-a",
            help="comma-separated item answers in order; an empty field is a missing item, e.g. "
            '"2,2,,1,0,3,2,1,1,0". STarT Back: items 1-8 as 0/1, item 9 as 0-4.',
        ),
    ],
    format: FormatOpt = Format.text,
) -> None:
    """Score an outcome questionnaire by its published rules (JSON: score, band, subscales)."""
    kb = load_knowledge()
    result = score_answers(instrument.strip().lower(), parse_answers(answers), kb)
    show(result, format, lambda: render_score(result))


@app.command("course")
@user_errors
def course_command(
    file: Annotated[
        Path, typer.Argument(help="episode JSON: assessment, plan, sessions with outcomes")
    ],
    format: FormatOpt = Format.text,
    as_of: AsOfOpt = None,
) -> None:
    """Follow a course of TPIs: response, session limits, reassessment, re-evaluation."""
    kb = load_knowledge()
    when = parse_date(as_of)
    episode = parse_episode(read_json(file, expect="episode"), kb, as_of=when)
    report = evaluate_course(episode, kb, as_of=when)
    show(report, format, lambda: render_course(report, title=str(file)))


@schema_app.command("episode")
@user_errors
def schema_episode() -> None:
    """Print the JSON Schema of the episode file read by 'triggerpath course'."""
    schema = Episode.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://triggerpath.example/schemas/episode/{load_knowledge().version}"
    emit_json(schema)


# --------------------------------------------------------------------------- rendering
def _band(s: Score) -> str:
    if s.band is None:
        return "no published bands"
    return f"{s.band} ({s.band_name}, {s.band_range})"


def render_score(s: Score) -> RenderableType:
    head = Text()
    head.append(f" {s.instrument.upper()} ", style="bold white on blue")
    head.append(f"  {s.score:g}{s.unit if s.unit == '%' else ' ' + s.unit}  ")
    head.append(_band(s), style="bold")
    lines: list[RenderableType] = [head]
    detail = f"raw {s.raw}/{s.raw_max}; {s.answered} item(s) answered"
    if s.missing_items:
        detail += f"; missing item(s): {', '.join(str(n) for n in s.missing_items)}"
    lines.append(Text(detail))
    for name, value in s.subscales.items():
        lines.append(Text(f"subscale {name}: {value}"))
    if s.matched_care:
        lines.append(Text(f"Matched care: {s.matched_care}"))
    lines.append(Text(f"\nScoring: {s.scoring_rule}", style="dim"))
    lines.append(Text(f"Missing items: {s.missing_rule}", style="dim"))
    if s.bands_note:
        lines.append(Text(f"Bands: {s.bands_note}", style="dim"))
    lines.append(Text("Source: " + "; ".join(s.references), style="dim italic"))
    return Panel(Group(*lines), title=s.name, expand=True)


def _worksheet(w: Worksheet) -> list[RenderableType]:
    parts: list[RenderableType] = [
        cited(f"\n{w.title}", w.statement_ids, "bold underline red"),
        Text(w.text),
    ]
    for r in w.opened_because:
        parts.append(cited(f"» {r.text}", r.statement_ids))
    for label, items in (
        ("Technical review", w.technical_review),
        ("Perpetuating factors", w.perpetuating_factors),
        ("Failure risk factors", w.failure_risk_factors),
    ):
        parts.append(Text(f"\n{label}", style="bold"))
        for c in items:
            line = Text("  ")
            line.append(f"[{c.status}]", style=STATUS_STYLE.get(c.status, ""))
            line.append(f" {c.title}: {c.finding} — {c.check} {ids(c.statement_ids)}")
            parts.append(line)
    parts.append(Text("\nDifferential diagnosis and work-up", style="bold"))
    for d in w.differential:
        line = Text("  ")
        line.append(f"[{d.status}]", style=STATUS_STYLE.get(d.status, ""))
        line.append(
            f" {d.name}: {d.finding} Work-up: {' → '.join(d.workup)} → {d.treatment} "
            f"{ids(d.statement_ids)}"
        )
        parts.append(line)
    parts.append(Text("\nAlternative pathways", style="bold"))
    for a in w.alternatives:
        mark = "★" if a.highlighted else "·"
        parts.append(cited(f"  {mark} {a.name}: {a.text} ({a.why})", a.statement_ids))
    return parts


def _ablation(d: AblationDecision) -> list[RenderableType]:
    style = "bold green" if d.supported else "bold yellow"
    head = Text("\nRadiofrequency ablation decision: ", style="bold underline")
    head.append(d.decision.upper(), style=style)
    parts: list[RenderableType] = [head]
    for b in d.blocks:
        mark = "✓" if b.qualifies else "✗"
        parts.append(Text(f"  {mark} block {b.number}: {b.relief_pct:g}% relief"))
    parts.append(cited(f"{d.text}", d.statement_ids))
    parts.append(Text(d.other_rule, style="dim"))
    return parts


def render_course(r: CourseReport, *, title: str | None = None) -> RenderableType:
    """Response first, then warnings, sessions, reassessment and the re-evaluation."""
    parts: list[RenderableType] = [*_response(r)]
    parts += section("Warnings", [_warning(w) for w in r.warnings])
    parts += _sessions(r)
    parts += section(
        "Outcome measures",
        [
            Text(
                f"{o.instrument.upper()}: {o.first:g}{o.unit} ({o.first_band or '-'}) at "
                f"session {o.first_session} → {o.latest:g}{o.unit} ({o.latest_band or '-'}) "
                f"at session {o.latest_session}; change {o.change:+g}"
            )
            for o in r.outcomes
        ],
    )
    parts += section("Notes", [cited(f"- {n.text}", n.statement_ids, "dim") for n in r.notes])
    parts += section("Needed (not guessed)", [Text(f"? {n.field} — {n.why}") for n in r.needs])
    if r.reevaluation is not None:
        parts.extend(_worksheet(r.reevaluation))
    if r.ablation is not None:
        parts.extend(_ablation(r.ablation))
    parts.append(
        Text(
            f"\nAssessment: {r.assessment.verdict} · knowledge {r.knowledge_version} · as of "
            f"{r.as_of.isoformat()} · policy {r.policy} · {r.disclaimer}",
            style="dim italic",
        )
    )
    return Panel(Group(*parts), title=title or "TriggerPath course", expand=True)


def _response(r: CourseReport) -> list[RenderableType]:
    """The course response in colour with the headline, and the NRS change behind it."""
    resp = r.response
    head = Text()
    head.append(
        f" {(resp.classification or 'not yet known').upper()} ",
        style=RESPONSE_STYLE[resp.classification],
    )
    head.append(f"  {r.headline}")
    parts: list[RenderableType] = [head, cited(f"{resp.text}", resp.statement_ids)]
    if resp.change_pct is not None:
        parts.append(
            Text(
                f"Course: NRS {resp.baseline_nrs} at the first session → "
                f"{resp.latest_nrs} ({resp.change_pct:g}% reduction). IMMPACT: "
                f"≥{resp.moderate_pct:g}% moderately important, ≥"
                f"{resp.substantial_pct:g}% substantial, about {resp.points:g} points.",
                style="dim",
            )
        )
    return parts


def _warning(w: Caution) -> Text:
    """A warning with its action and sources, in yellow."""
    return caution(w.text, w.action, w.statement_ids)


def _sessions(r: CourseReport) -> list[RenderableType]:
    """Sessions done against the phase's range, one table row each, the reassessment."""
    c = r.course
    limit = (
        f"{c.done} done of {c.sessions_min}-{c.sessions_max} ({c.phase})"
        if c.sessions_max is not None
        else f"{c.done} done (phase unknown)"
    )
    if c.planned is not None:
        limit += f"; {c.planned} planned"
    parts: list[RenderableType] = [
        Text("\nSessions", style="bold underline"),
        cited(f"{limit}", c.statement_ids),
    ]
    if r.sessions:
        parts.append(_session_table(r.sessions))
    ra = r.reassessment
    if ra.due_from is not None:
        parts.append(
            Text(
                f"Reassessment: {ra.status} (window {ra.due_from} to {ra.due_by}"
                f"{', done ' + ra.done_on.isoformat() if ra.done_on else ''}) "
                f"{ids(ra.statement_ids)}"
            )
        )
    return parts


def _session_table(sessions: list[SessionResult]) -> Table:
    """One row per session: NRS change, relief, response, active care, scores."""
    table = Table(show_edge=False, pad_edge=False)
    for col in ("#", "date", "NRS", "change", "relief (d)", "response", "PT/HEP", "scores"):
        table.add_column(col)
    for s in sessions:
        table.add_row(
            str(s.number),
            s.date.isoformat(),
            f"{s.pre_nrs}→{s.post_nrs if s.post_nrs is not None else '?'}",
            f"{s.change_pct:g}%" if s.change_pct is not None else "-",
            f"{s.relief_duration_days:g}" if s.relief_duration_days is not None else "-",
            Text(s.response or "-", style=RESPONSE_STYLE[s.response]),
            f"{_yn(s.physical_therapy)}/{_yn(s.home_exercise)}",
            ", ".join(f"{x.instrument} {x.score:g}{x.unit}" for x in s.scores),
        )
    return table


def _yn(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "no"
