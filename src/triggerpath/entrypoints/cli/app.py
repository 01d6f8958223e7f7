"""The ``triggerpath`` Typer app, its shared options, its error translation and lazy loading.

Subcommand modules (``assess``, ``course``, ``plan``, ``screen``, ``service``, ``web`` ...)
register on ``app`` (or on ``schema_app`` / ``knowledge_app``) when they are imported; this
module imports none of them, so there is no cycle. Which module to import for which command
is declared with :func:`lazy` in ``cli/__init__.py`` (see there): the :class:`LazyGroup`
imports a module only when one of its commands is run, so ``triggerpath assess`` never pays
for the web app, the API or the database.

Exit codes: 0 success (whatever the clinical verdict), 2 bad input (the message
names the field and the reason). User errors never show a traceback.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from typer import _click as click  # Typer >= 0.24 vendors Click; its groups use these types
from typer.core import TyperGroup

from triggerpath.domain import jsontext
from triggerpath.errors import InvalidInput, KnowledgeError, NotFound, TriggerPathError

ROOT = "triggerpath"


@dataclass(frozen=True)
class LazyModule:
    """A subcommand module and the command paths it registers (``"assess"``, ``"db"``,
    ``"knowledge show"``), declared so that nothing has to be imported to find them."""

    module: str
    commands: tuple[str, ...]


#: Every declared subcommand module, in registration order (= the order in ``--help``).
LAZY_MODULES: list[LazyModule] = []
#: The Typer apps whose click groups load lazily, by group name (``triggerpath``, ``schema`` ...).
LAZY_APPS: dict[str, typer.Typer] = {}


def lazy(module: str, *commands: str) -> None:
    """Declare that importing ``module`` registers ``commands`` (one line per module).

    A top-level command or group is its name (``"serve"``, ``"db"``); a command in a lazy
    group is ``"<group> <name>"`` (``"knowledge show"``, ``"schema plan"``).
    """
    if not commands:
        raise ValueError(f"lazy({module!r}) declares no command")
    LAZY_MODULES.append(LazyModule(module, commands))


def load_all() -> None:
    """Import every declared subcommand module (for ``--help``, typos and tests)."""
    for entry in LAZY_MODULES:
        importlib.import_module(entry.module)


def _load_for(path: str) -> bool:
    """Import the module that declares the command ``path``; False when none does."""
    for entry in LAZY_MODULES:
        if path in entry.commands:
            importlib.import_module(entry.module)
            return True
    return False


class LazyGroup(TyperGroup):
    """A click group that imports a subcommand's module only when that command is needed.

    ``get_command`` for a name it does not have yet imports the module declared for it
    (or, for an undeclared name, every module, so a forgotten declaration is slow but
    still works), then rebuilds its commands from the Typer app they registered on.
    Listing (``--help``) imports every module; completing a command name imports none.
    """

    def _typer_app(self) -> typer.Typer:
        return LAZY_APPS[self.name or ROOT]

    def _path(self, name: str) -> str:
        return name if (self.name or ROOT) == ROOT else f"{self.name} {name}"

    def _refresh(self) -> None:
        fresh = typer.main.get_group(self._typer_app())
        for name, command in fresh.commands.items():
            self.commands.setdefault(name, command)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            if not _load_for(self._path(cmd_name)):
                load_all()
            self._refresh()
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_all()
        self._refresh()
        return super().list_commands(ctx)

    def declared_names(self) -> list[str]:
        """Command names of this group, from the declarations (nothing imported)."""
        names = list(self.commands)
        prefix = "" if (self.name or ROOT) == ROOT else f"{self.name} "
        for entry in LAZY_MODULES:
            for path in entry.commands:
                if path.startswith(prefix) and " " not in path[len(prefix) :]:
                    name = path[len(prefix) :]
                    if name not in names:
                        names.append(name)
        return names

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Complete command names from the declarations, so a TAB imports nothing."""
        from typer._click.shell_completion import CompletionItem

        if incomplete.startswith("-"):
            return click.Command.shell_complete(self, ctx, incomplete)
        return [CompletionItem(n) for n in self.declared_names() if n.startswith(incomplete)]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("triggerpath")
        except PackageNotFoundError:  # running from a source tree that is not installed
            from triggerpath import __version__ as number
        typer.echo(f"triggerpath {number}")
        raise typer.Exit()


app = typer.Typer(
    name=ROOT,
    cls=LazyGroup,
    help="Decision support for trigger point injections (TPIs) in back pain.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
schema_app = typer.Typer(
    cls=LazyGroup, help="JSON Schemas of TriggerPath's inputs.", no_args_is_help=True
)
knowledge_app = typer.Typer(cls=LazyGroup, help="Browse the knowledge base.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(knowledge_app, name="knowledge")
LAZY_APPS.update({ROOT: app, "schema": schema_app, "knowledge": knowledge_app})


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Decision support for trigger point injections (TPIs) in back pain."""


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


def read_json(path: Path, field: str = "FILE", *, expect: str | None = None) -> Any:
    """Parse a JSON file; with ``expect`` (``assessment``, ``episode``, ``plan``) also check
    that it has that file's shape (see :func:`check_shape`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput.single(field, f"{path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput.single(field, f"{path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput.single(field, f"cannot read {path}: {exc}") from None
    data = jsontext.loads(text, field, what=str(path))  # bounded: size, numbers, depth
    if expect is not None:
        check_shape(data, expect, path, field)
    return data


@dataclass(frozen=True)
class FileShape:
    """One kind of JSON file the CLI reads: which command reads it and what it looks like."""

    kind: str
    command: str
    looks_like: str
    keys: tuple[str, ...]  # top-level keys of which such a file has at least one


#: The input files, by the ``expect`` name given to :func:`read_json`.
FILE_SHAPES = {
    "assessment": FileShape(
        "an assessment",
        "triggerpath assess FILE",
        '{"patient": {...}, "regions": [...], "pain": {...}, "trigger_points": [...], ...}',
        ("patient", "regions", "pain", "trigger_points", "red_flags"),
    ),
    "episode": FileShape(
        "an episode (a course of TPIs)",
        "triggerpath course FILE",
        '{"assessment": {...}, "plan": {...}, "sessions": [...], "reassessments": [...], ...}',
        ("assessment", "plan", "sessions", "reassessments"),
    ),
    "plan": FileShape(
        "a procedure plan request",
        "triggerpath plan FILE",
        '{"assessment": {...}, "targets": [...], "injectate": {...}, "prior_24h": [...], ...}',
        ("assessment", "targets", "injectate"),
    ),
}
EPISODE_KEYS = ("sessions", "reassessments", "startback", "medial_branch_blocks", "plan")


def detect_shape(data: Any) -> str | None:
    """What kind of TriggerPath (or FHIR / CDS Hooks) file ``data`` looks like, if any."""
    if not isinstance(data, dict):
        return None
    if "resourceType" in data:
        return "fhir"
    if "hook" in data and "context" in data:
        return "cds"
    if "verdict" in data and "reasons" in data:
        return "recommendation"
    if "assessment" in data:
        if "targets" in data or "injectate" in data:
            return "plan"
        return "episode" if any(k in data for k in EPISODE_KEYS) else None
    if "patient" in data or "regions" in data:
        return "assessment"
    return None


def _described(kind: str, data: Any) -> str:
    """How to name a detected kind of file, with the command that reads it."""
    if kind == "fhir":
        name = data.get("resourceType") if isinstance(data, dict) else None
        return f"a FHIR {name} (read by 'triggerpath screen PATH')"
    if kind == "cds":
        return "a CDS Hooks request (POST it to /cds-services/{hook} of 'triggerpath serve')"
    if kind == "recommendation":
        return "the output of 'triggerpath assess --format json', not an input"
    shape = FILE_SHAPES[kind]
    return f"{shape.kind} file (read by '{shape.command}')"


def check_shape(data: Any, expect: str, path: Path, field: str = "FILE") -> None:
    """Refuse, in one message, a file that is not the kind the command reads.

    A wrong-shape file would otherwise yield one "unknown field" per key; instead say what
    the file looks like, which command reads it, and what this command expects. Files of
    the right shape (or of no recognisable shape but with the expected keys) pass on to
    field-by-field validation, whose errors name each field.
    """
    shape = FILE_SHAPES[expect]
    wanted = f"'{shape.command}' reads {shape.kind} file: {shape.looks_like}"
    schema = f"'triggerpath schema {expect}'"
    if not isinstance(data, dict):
        kind = "a JSON array" if isinstance(data, list) else f"a JSON {type(data).__name__}"
        raise InvalidInput.single(field, f"{path} holds {kind}; {wanted} (see {schema})")
    found = detect_shape(data)
    if found is not None and found != expect:
        raise InvalidInput.single(
            field, f"{path} looks like {_described(found, data)}; {wanted} (see {schema})"
        )
    if found is None and not any(k in data for k in shape.keys):
        keys = ", ".join(sorted(data)[:5]) or "no keys"
        raise InvalidInput.single(
            field,
            f"{path} does not look like {shape.kind} file (top-level keys: {keys}); "
            f"{wanted} (see {schema})",
        )


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def show(result: Any, format: Format, text: Callable[[], object]) -> None:
    """Every command's one output rule: the result model as JSON, or its text rendering.

    ``text`` is called only for text output, so a JSON run never builds the rich view.
    """
    if format is Format.json:
        emit_json(result.model_dump(mode="json"))
    else:
        out.print(text())
