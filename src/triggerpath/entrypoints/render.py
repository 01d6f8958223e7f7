"""Text rendering of results for the terminal (Rich).

Renders the engine's objects as they are: no decision is recomputed here.
"""

from __future__ import annotations

from datetime import date

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from triggerpath.domain.recommendation import ExpectedCourse, Recommendation

VERDICT_STYLE = {
    "urgent_referral": "bold white on red",
    "not_indicated": "bold yellow",
    "insufficient_findings": "bold cyan",
    "contraindicated": "bold red",
    "conservative_care_first": "bold blue",
    "tpi_appropriate": "bold green",
}


def ids(statement_ids: list[str]) -> str:
    return "[" + ", ".join(statement_ids) + "]" if statement_ids else ""


def cited(text: str, statement_ids: list[str], style: str = "") -> Text:
    """A line of text followed by the statement ids it rests on."""
    return Text(f"{text} {ids(statement_ids)}", style=style)


def caution(text: str, action: str, statement_ids: list[str]) -> Text:
    """A caution line with what to do about it, as every view prints one."""
    return cited(f"! {text}\n    → {action}", statement_ids, "yellow")


def heading(title: str) -> Text:
    """A section heading of the terminal views (one look for every command)."""
    return Text(f"\n{title}", style="bold underline")


def section(title: str, lines: list[RenderableType]) -> list[RenderableType]:
    """A heading over its lines; nothing at all when there are no lines."""
    return [heading(title), *lines] if lines else []


def expected_course(ec: ExpectedCourse, relief: str) -> list[RenderableType]:
    """The expected-course section of an assessment or a plan: sessions, relief, sources."""
    sessions = (
        f"{ec.sessions_min}-{ec.sessions_max} sessions ({ec.phase})"
        if ec.phase
        else "phase unknown (duration not recorded)"
    )
    return [heading("Expected course"), Text(f"{sessions}. {relief} {ids(ec.statement_ids)}")]


def footer(knowledge_version: str, as_of: date, disclaimer: str) -> Text:
    """The closing line of an assessment or a plan: which knowledge, which day, the caveat."""
    return Text(
        f"\nKnowledge {knowledge_version} · as of {as_of.isoformat()} · {disclaimer}",
        style="dim italic",
    )


def recommendation(rec: Recommendation, *, title: str | None = None) -> RenderableType:
    """Verdict first, then reasons, cautions, next step; statement ids everywhere."""
    parts: list[RenderableType] = []
    head = Text()
    head.append(f" {rec.verdict.upper()} ", style=VERDICT_STYLE[rec.verdict])
    head.append(f"  {rec.headline}")
    if rec.redirect:
        head.append(f"\nRedirect: {rec.redirect}", style="bold")
        if len(rec.redirects) > 1:
            head.append(f" (also: {', '.join(rec.redirects[1:])})")
    parts.append(head)

    parts.append(heading("Reasons"))
    parts += [Text(f"• {r.text} {ids(r.statement_ids)}") for r in rec.reasons]
    parts += section("Cautions", [caution(c.text, c.action, c.statement_ids) for c in rec.cautions])
    parts += section(
        "Needed (not guessed)",
        [Text(f"? {n.field} — {n.why}{'' if n.blocking else ' (optional)'}") for n in rec.needs],
    )
    parts += section(
        "Other findings",
        [Text(f"- {f.text} {ids(f.statement_ids)}", style="dim") for f in rec.findings],
    )

    sc = rec.stepped_care
    parts.append(Text("\nStepped care", style="bold underline"))
    parts.append(
        Text(
            f"Stage reached: {sc.stage} ({sc.stage_name}). {sc.next_step.text} "
            f"{ids(sc.next_step.statement_ids)}"
        )
    )
    if rec.verdict == "tpi_appropriate":
        parts.append(Text("\nGoes with the TPI (never monotherapy)", style="bold underline"))
        for item in rec.comprehensive_care:
            parts.append(Text(f"+ {item.title}: {item.text} {ids(item.statement_ids)}"))
        parts.append(Text("\nBefore the procedure", style="bold underline"))
        for item in rec.before_procedure:
            parts.append(Text(f"□ {item.title}: {item.text} {ids(item.statement_ids)}"))
        parts += expected_course(rec.expected_course, rec.expected_course.relief)
        parts.append(Text("\nEvidence", style="bold underline"))
        for item in rec.evidence_notes:
            parts.append(
                Text(f"i {item.title}: {item.text} {ids(item.statement_ids)}", style="dim")
            )
    if rec.conflicts:
        parts.append(Text("\nWhere the sources differ", style="bold underline"))
        for cf in rec.conflicts:
            parts.append(
                Text(f"≠ {cf.topic}: {cf.range} — " + "; ".join(cf.positions), style="dim")
            )
    parts.append(footer(rec.knowledge_version, rec.as_of, rec.disclaimer))
    return Panel(Group(*parts), title=title or "TriggerPath assessment", expand=True)


def summary_table(rows: list[tuple[str, Recommendation, str | None]]) -> Table:
    table = Table(title="Shipped examples")
    table.add_column("example")
    table.add_column("verdict")
    table.add_column("redirect")
    table.add_column("expected")
    table.add_column("reasons (ids)")
    for name, rec, expected in rows:
        ok = expected is None or expected == rec.verdict
        table.add_row(
            name,
            Text(rec.verdict, style=VERDICT_STYLE[rec.verdict]),
            rec.redirect or "",
            Text(expected or "-", style="green" if ok else "bold red"),
            ", ".join(sorted({s for r in rec.reasons for s in r.statement_ids})),
        )
    return table
