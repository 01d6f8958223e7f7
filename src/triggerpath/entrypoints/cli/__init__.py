"""``triggerpath`` command line (Typer + Rich).

``app.py`` holds the Typer app and the options every command shares; each subcommand
module registers its commands on it when imported here. Tests and the console script use
``triggerpath.entrypoints.cli:app`` / ``:main``.
"""

from __future__ import annotations

from triggerpath.entrypoints.cli import assess as _assess  # noqa: F401
from triggerpath.entrypoints.cli import course as _course  # noqa: F401
from triggerpath.entrypoints.cli import plan as _plan  # noqa: F401
from triggerpath.entrypoints.cli import safety as _safety  # noqa: F401
from triggerpath.entrypoints.cli import screen as _screen  # noqa: F401
from triggerpath.entrypoints.cli import service as _service  # noqa: F401
from triggerpath.entrypoints.cli import web as _web  # noqa: F401
from triggerpath.entrypoints.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
