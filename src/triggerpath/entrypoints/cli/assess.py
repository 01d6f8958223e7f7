"""``triggerpath assess``, ``demo``, ``schema assessment`` and ``knowledge …`` browsing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from triggerpath.domain.engine import assess as run_assess
from triggerpath.domain.validation import assessment_json_schema, parse_assessment
from triggerpath.entrypoints import render
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
from triggerpath.errors import InvalidInput, NotFound
from triggerpath.knowledge import load_knowledge


@app.command()
@user_errors
def assess(
    file: Annotated[Path, typer.Argument(help="JSON file with the assessment findings")],
    format: FormatOpt = Format.text,
    as_of: AsOfOpt = None,
) -> None:
    """Assess a patient's findings: verdict on TPI, reasons and statement ids."""
    kb = load_knowledge()
    when = parse_date(as_of)
    assessment = parse_assessment(read_json(file, expect="assessment"), kb)
    rec = run_assess(assessment, kb, as_of=when)
    show(rec, format, lambda: render.recommendation(rec, title=str(file)))


@app.command()
@user_errors
def demo(
    directory: Annotated[Path, typer.Argument(help="folder of example assessments")] = Path(
        "examples/assessments"
    ),
    as_of: AsOfOpt = None,
    details: Annotated[bool, typer.Option(help="print each full recommendation too")] = False,
) -> None:
    """Assess every shipped example and show the results side by side."""
    kb = load_knowledge()
    when = parse_date(as_of)
    if not directory.is_dir():
        raise InvalidInput.single("DIRECTORY", f"{directory} is not a folder")
    expected_path = directory / "expected.json"
    expected: dict[str, Any] = read_json(expected_path) if expected_path.exists() else {}
    rows = []
    for path in sorted(directory.glob("*.json")):
        if path.name == "expected.json":
            continue
        rec = run_assess(parse_assessment(read_json(path, expect="assessment"), kb), kb, as_of=when)
        rows.append((path.stem, rec, expected.get(path.stem, {}).get("verdict")))
        if details:
            out.print(render.recommendation(rec, title=path.name))
    out.print(render.summary_table(rows))
    mismatches = [name for name, rec, exp in rows if exp and exp != rec.verdict]
    out.print(
        f"{len(rows)} examples assessed with knowledge {kb.version}; "
        f"{len(mismatches)} differ from expected."
    )
    if mismatches:
        raise typer.Exit(1)


@schema_app.command("assessment")
@user_errors
def schema_assessment() -> None:
    """Print the JSON Schema of the assessment input."""
    emit_json(assessment_json_schema(load_knowledge()))


@knowledge_app.command("muscles")
@user_errors
def knowledge_muscles(format: FormatOpt = Format.text) -> None:
    """List the muscles with region, needle, guidance and hazards."""
    kb = load_knowledge()
    if format is Format.json:
        emit_json([m.model_dump(mode="json") for m in kb.anatomy.muscles])
        return
    from rich.table import Table

    t = Table(title=f"Muscles (knowledge {kb.version})")
    for col in ("id", "name", "regions", "needle", "guidance", "hazards", "sources"):
        t.add_column(col)
    for m in kb.anatomy.muscles:
        n = m.needle
        t.add_row(
            m.id,
            m.name,
            ", ".join(m.regions),
            f"{n.gauge_min}-{n.gauge_max} G, {n.length_mm_min}-{n.length_mm_max} mm",
            m.guidance,
            ", ".join(m.hazards),
            ", ".join(m.statement_ids) or m.basis,
        )
    out.print(t)


@knowledge_app.command("evidence")
@user_errors
def knowledge_evidence(format: FormatOpt = Format.text) -> None:
    """List the evidence catalogue: every source statement, paraphrased."""
    kb = load_knowledge()
    if format is Format.json:
        emit_json(kb.evidence.model_dump(mode="json"))
        return
    from rich.table import Table

    t = Table(title=f"Evidence catalogue (knowledge {kb.version})")
    for col in ("id", "kind", "topic", "summary"):
        t.add_column(col)
    for s in kb.evidence.statements:
        t.add_row(s.id, s.kind, s.topic, s.summary)
    out.print(t)
    for c in kb.evidence.conflicts:
        out.print(f"[bold]Conflict {c.id}[/]: {c.range} — {c.resolution}")


@knowledge_app.command("pathway")
@user_errors
def knowledge_pathway(format: FormatOpt = Format.text) -> None:
    """Show stepped care, red flags, redirects and contraindications."""
    kb = load_knowledge()
    p = kb.pathway
    if format is Format.json:
        emit_json(p.model_dump(mode="json", by_alias=True))
        return
    for s in p.care_steps:
        out.print(f"[bold]Step {s.stage}: {s.name}[/] {render.ids(s.statement_ids)}")
        for m in s.modalities:
            out.print(f"   {m.id:<32} {m.name}")
    out.print(f"\n[bold]Red flags[/] ({p.red_flag_list_source.strip()})")
    for r in p.red_flags:
        out.print(f"   {r.id:<34} {r.name} — {r.workup} {render.ids(r.statement_ids)}")
    out.print("\n[bold]Other pain generators → redirect[/]")
    for g in p.pain_generators:
        out.print(f"   {g.id:<34} {g.redirect} {render.ids(g.statement_ids)}")
    out.print("\n[bold]Contraindications[/]")
    for c in p.contraindications:
        out.print(f"   {c.id:<34} {c.severity:<9} {c.name} {render.ids(c.statement_ids)}")


@knowledge_app.command("show")
@user_errors
def knowledge_show(item_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Show one item (statement id, muscle, hazard, exercise, pathway item) in full."""
    emit_json(find_item(item_id))


def find_item(item_id: str) -> dict[str, Any]:
    """Any knowledge item by its id (statement, muscle, rule, agent, instrument, value set)."""
    kb = load_knowledge()
    wanted = item_id.strip().casefold()  # "s000.22" finds S000.22: ids are not case-sensitive
    statement = next((s for sid, s in kb.statements.items() if sid.casefold() == wanted), None)
    if statement is not None:
        return statement.model_dump(mode="json")
    roots: list[BaseModel] = [
        kb.anatomy,
        kb.pathway,
        kb.evidence,
        kb.injectates,
        kb.instruments,
        kb.valuesets,
    ]
    for root in roots:
        found = _find(root, wanted)
        if found is not None:
            return found.model_dump(mode="json", by_alias=True)
    raise NotFound(
        f"no knowledge item {item_id!r} (ids look like S000.22, quadratus_lumborum, "
        "lidocaine; list them with 'triggerpath knowledge evidence|muscles|pathway')"
    )


def _same_id(value: object, wanted: str) -> bool:
    return isinstance(value, str) and value.casefold() == wanted


def _find(node: Any, wanted: str) -> BaseModel | None:
    """Depth-first search for a model whose ``id`` (or ``code``) is ``wanted`` (casefolded)."""
    if isinstance(node, BaseModel):
        if _same_id(getattr(node, "id", None), wanted) or _same_id(
            getattr(node, "code", None), wanted
        ):
            return node
        for name in type(node).model_fields:
            hit = _find(getattr(node, name), wanted)
            if hit is not None:
                return hit
    elif isinstance(node, list | tuple):
        for item in node:
            hit = _find(item, wanted)
            if hit is not None:
                return hit
    return None
