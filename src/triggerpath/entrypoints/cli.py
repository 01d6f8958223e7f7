"""``triggerpath`` command line (Typer + Rich).

Exit codes: 0 success (whatever the clinical verdict), 2 bad input (the message
names the field and the reason). User errors never show a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console

from triggerpath.domain.engine import assess as run_assess
from triggerpath.domain.validation import assessment_json_schema, parse_assessment
from triggerpath.entrypoints import render
from triggerpath.errors import InvalidInput, KnowledgeError, NotFound, TriggerPathError
from triggerpath.knowledge import load_knowledge

app = typer.Typer(
    name="triggerpath",
    help="Decision support for trigger point injections (TPIs) in back pain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
schema_app = typer.Typer(help="JSON Schemas of TriggerPath's inputs.", no_args_is_help=True)
knowledge_app = typer.Typer(help="Browse the knowledge base.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(knowledge_app, name="knowledge")

out = Console(soft_wrap=False)
err = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


class Format(StrEnum):
    text = "text"
    json = "json"


FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="text for people, json for programs")
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="assessment date YYYY-MM-DD (default: today)"),
]


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Translate TriggerPath errors into a message and exit code 2 (never a traceback)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            err.print("[bold red]Invalid input[/]")
            for p in exc.problems:
                err.print(f"  {p.field}: {p.reason}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except NotFound as exc:
            err.print(f"[bold red]Not found:[/] {exc}")
            raise typer.Exit(2) from None
        except KnowledgeError as exc:
            err.print(str(exc), markup=False)
            raise typer.Exit(3) from None
        except TriggerPathError as exc:
            err.print(f"[bold red]Error:[/] {exc}")
            raise typer.Exit(2) from None

    return wrapper


def parse_date(value: str | None, field: str = "--as-of") -> date:
    if value is None:
        return date.today()  # the clock is read here, at the edge, never in the engine
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput.single(field, f"{value!r} is not a date YYYY-MM-DD") from None


def read_json(path: Path, field: str = "FILE") -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput.single(field, f"{path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput.single(field, f"{path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput.single(field, f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput.single(
            field, f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


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
    assessment = parse_assessment(read_json(file), kb)
    rec = run_assess(assessment, kb, as_of=when)
    if format is Format.json:
        emit_json(rec.model_dump(mode="json"))
    else:
        out.print(render.recommendation(rec, title=str(file)))


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
        rec = run_assess(parse_assessment(read_json(path), kb), kb, as_of=when)
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
    if item_id in kb.statements:
        return kb.statements[item_id].model_dump(mode="json")
    roots: list[BaseModel] = [
        kb.anatomy,
        kb.pathway,
        kb.evidence,
        kb.injectates,
        kb.instruments,
        kb.valuesets,
    ]
    for root in roots:
        found = _find(root, item_id)
        if found is not None:
            return found.model_dump(mode="json", by_alias=True)
    raise NotFound(f"no knowledge item {item_id!r}")


def _find(node: Any, item_id: str) -> BaseModel | None:
    """Depth-first search for a model whose ``id`` (or ``code``) is ``item_id``."""
    if isinstance(node, BaseModel):
        if getattr(node, "id", None) == item_id or getattr(node, "code", None) == item_id:
            return node
        for name in type(node).model_fields:
            hit = _find(getattr(node, name), item_id)
            if hit is not None:
                return hit
    elif isinstance(node, list | tuple):
        for item in node:
            hit = _find(item, item_id)
            if hit is not None:
                return hit
    return None


from triggerpath.entrypoints import cli_course as _cli_course  # noqa: E402,F401
from triggerpath.entrypoints import cli_plan as _cli_plan  # noqa: E402,F401
from triggerpath.entrypoints import cli_screen as _cli_screen  # noqa: E402,F401
from triggerpath.entrypoints import cli_service as _cli_service  # noqa: E402,F401
from triggerpath.entrypoints.web import cli as _cli_web  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
