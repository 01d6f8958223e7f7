"""The ``triggerpath`` Typer app, its shared options and its error translation.

Subcommand modules (``assess``, ``course``, ``plan``, ``screen``, ``service``, ``web``)
register on ``app``; this module imports none of them, so there is no cycle.

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
from rich.console import Console

from triggerpath.domain import jsontext
from triggerpath.errors import InvalidInput, KnowledgeError, NotFound, TriggerPathError

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
    return jsontext.loads(text, field, what=str(path))  # bounded: size, numbers, depth


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
