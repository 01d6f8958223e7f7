"""``triggerpath knowledge review-status`` and ``triggerpath safety report``.

``review-status`` lists the knowledge items that await clinical review (from
``knowledge/data/review.yaml``). ``safety report`` prints the hazard log
(``docs/safety/hazard-log.yaml``) with the last result of every test that proves a
mitigation, read from the JUnit XML of the last test run (``pytest
--junitxml=test-artifacts/junit.xml``); ``--format markdown|html --output FILE`` writes a page.
"""

from __future__ import annotations

import html
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from triggerpath.adapters.hazard_log import JUNIT, LOG, HazardLog, RunResults, load_log, read_junit
from triggerpath.entrypoints.cli.app import (
    Format,
    FormatOpt,
    app,
    emit_json,
    knowledge_app,
    out,
    user_errors,
)
from triggerpath.knowledge import load_knowledge
from triggerpath.knowledge.review import KINDS, review_of

safety_app = typer.Typer(
    help="Clinical safety: the hazard log and its tests.", no_args_is_help=True
)
app.add_typer(safety_app, name="safety")


@knowledge_app.command("review-status")
@user_errors
def review_status(fmt: FormatOpt = Format.text) -> None:
    """List the knowledge items that await clinical review (and who reviewed the others)."""
    kb = load_knowledge()
    log = review_of(kb)
    pending = log.pending()
    if fmt == Format.json:
        emit_json(
            {
                "knowledge_version": kb.version,
                "items": len(log.items),
                "pending": pending,
                "reviewed": {
                    i: r.model_dump(mode="json")
                    for i, r in log.items.items()
                    if r.status == "reviewed"
                },
            }
        )
        return
    out.print(
        f"Knowledge {kb.version}: {len(pending)} of {len(log.items)} items await clinical review.",
        markup=False,
    )
    for kind, label in KINDS.items():
        ids = [i for i in pending if i.split(".", 1)[0] == kind]
        if ids:
            out.print(f"\n{label} ({len(ids)}):", markup=False)
            for i in ids:
                out.print(f"  {i}", markup=False, highlight=False)
    for i, r in sorted(log.items.items()):
        if r.status == "reviewed":
            out.print(f"reviewed: {i} by {r.reviewer_role} on {r.date}", markup=False)


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"


def _rows(log: HazardLog, results: RunResults) -> list[tuple[str, str, str, str]]:
    """(hazard, mitigation, test, result) rows."""
    return [
        (f"{h.id} {h.title}", m.text, t, results.of(t))
        for h in log.hazards
        for m in h.mitigations
        for t in m.tests
    ]


def _text(log: HazardLog, results: RunResults) -> str:
    lines: list[str] = []
    for h in log.hazards:
        lines.append(
            f"{h.id} {h.title} [severity {h.severity}; likelihood "
            f"{h.likelihood.initial} -> {h.likelihood.residual}]"
        )
        lines.append(f"  cause:  {h.cause}")
        lines.append(f"  effect: {h.effect}")
        for m in h.mitigations:
            lines.append(f"  - {m.text}")
            lines.extend(f"      {results.of(t):8} {t}" for t in m.tests)
    return "\n".join(lines)


def _markdown(log: HazardLog, results: RunResults) -> str:
    lines = [f"# Hazard log ({log.standard})", "", _source(results), ""]
    for h in log.hazards:
        lines += [
            f"## {h.id} {h.title}",
            "",
            f"- Cause: {h.cause}",
            f"- Effect: {h.effect}",
            f"- Severity: {h.severity}; likelihood {h.likelihood.initial} → "
            f"{h.likelihood.residual}",
            "",
            "| Mitigation | Test | Last result |",
            "|---|---|---|",
        ]
        lines += [f"| {m.text} | `{t}` | {results.of(t)} |" for m in h.mitigations for t in m.tests]
        lines.append("")
    return "\n".join(lines)


def _html(log: HazardLog, results: RunResults) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(hz)}</td><td>{e(m)}</td><td><code>{e(t)}</code></td>"
        f'<td class="{e(r.replace(" ", "-"))}">{e(r)}</td></tr>'
        for hz, m, t, r in _rows(log, results)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Hazard log</title></head><body><h1>Hazard log</h1><p>{e(log.standard)}</p>"
        f"<p>{e(_source(results))}</p><table><thead><tr><th>Hazard</th><th>Mitigation</th>"
        f"<th>Test</th><th>Last result</th></tr></thead><tbody>{rows}</tbody></table>"
        "</body></html>\n"
    )


def _source(results: RunResults) -> str:
    if results.source is None:
        return "No test results found: run pytest --junitxml=test-artifacts/junit.xml first."
    return f"Last results from {results.source}."


@safety_app.command("report")
@user_errors
def report(
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.text,
    log_path: Annotated[Path, typer.Option("--log", help="hazard log YAML")] = LOG,
    results_path: Annotated[
        Path, typer.Option("--results", help="JUnit XML of the last test run")
    ] = JUNIT,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here")] = None,
) -> None:
    """Print the hazard log with each mitigation's tests and their last result."""
    log = load_log(log_path)
    results = read_junit(results_path)
    if fmt == ReportFormat.json:
        emit_json(
            {
                "results_from": str(results.source) if results.source else None,
                "hazards": [
                    {**h.model_dump(mode="json"), "results": {t: results.of(t) for t in h.tests}}
                    for h in log.hazards
                ],
            }
        )
        return
    text = {
        ReportFormat.text: lambda: _source(results) + "\n\n" + _text(log, results),
        ReportFormat.markdown: lambda: _markdown(log, results),
        ReportFormat.html: lambda: _html(log, results),
    }[fmt]()
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        out.print(f"wrote {output}", markup=False)
        return
    typer.echo(text)
