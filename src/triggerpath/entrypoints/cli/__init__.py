"""``triggerpath`` command line (Typer + Rich), loaded lazily so every command starts fast.

``app.py`` holds the Typer app, the options every command shares and :class:`LazyGroup`.
Each subcommand module registers its commands on ``app`` (or on ``schema_app`` /
``knowledge_app``) when it is imported, and is declared below by **one line**::

    lazy("triggerpath.entrypoints.cli.safety", "safety", "knowledge review-status")

naming the module and every command path it registers: a top-level command or group by its
name (``"serve"``, ``"db"``), a command inside the shared ``schema`` / ``knowledge`` groups as
``"<group> <name>"``. The module is imported only when one of those commands runs, so
``triggerpath assess`` never imports the web app, the API, SQLAlchemy or uvicorn (it starts
in well under half a second; ``bench/cli_startup.py`` measures it). ``--help`` imports every
module to list every command.

Rules for a new module: declare it here with ``lazy(...)`` (an eager ``import`` line works but
makes every command pay for its imports); import heavy libraries (FastAPI, SQLAlchemy,
uvicorn, WeasyPrint, dask) inside the commands that serve, not at module level.
``tests/test_cli_startup.py`` fails, naming the command, when a declaration is missing or
stale, and when ``assess`` imports a web, API or database module.

Tests and the console script use ``triggerpath.entrypoints.cli:app`` / ``:main``.
"""

from __future__ import annotations

import os
import sys

from triggerpath.entrypoints.cli.app import app, lazy
from triggerpath.knowledge.cache import cache_dir, configure

# fmt: off
lazy("triggerpath.entrypoints.cli.assess", "assess", "demo", "schema assessment", "knowledge muscles", "knowledge evidence", "knowledge pathway", "knowledge show")  # noqa: E501
lazy("triggerpath.entrypoints.cli.course", "score", "course", "schema episode")
lazy("triggerpath.entrypoints.cli.safety", "safety", "knowledge review-status")
lazy("triggerpath.entrypoints.cli.plan", "dose", "plan", "schema plan", "knowledge injectates")
lazy("triggerpath.entrypoints.cli.screen", "screen", "knowledge measures")
lazy("triggerpath.entrypoints.cli.service", "serve", "db", "users", "audit")
lazy("triggerpath.entrypoints.cli.web", "demo-data")
# fmt: on

__all__ = ["app", "main"]


#: Commands that serve: they start once, so they validate the knowledge base from the YAML.
SERVING = frozenset({"serve"})


def main() -> None:
    """Console-script entry point.

    Every command but those that serve keeps the validated knowledge base between runs
    (``knowledge/cache.py``; ``TRIGGERPATH_KNOWLEDGE_CACHE=off`` turns that off).
    """
    if not SERVING.intersection(sys.argv[1:2]):
        configure(cache_dir(os.environ))
    app()
