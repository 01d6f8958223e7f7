"""``triggerpath demo-data``: demo patients and users for the web app (development only).

Registered on the main ``triggerpath`` app by one import line in ``cli.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from triggerpath.adapters import database
from triggerpath.bootstrap import uow_factory
from triggerpath.config import load_settings
from triggerpath.entrypoints.cli.app import app, out, user_errors
from triggerpath.entrypoints.web import demo
from triggerpath.knowledge import load_knowledge


@app.command("demo-data")
@user_errors
def demo_data(
    examples: Annotated[
        Path, typer.Option(help="the examples folder (courses/ and assessments/)")
    ] = Path("examples"),
) -> None:
    """Development only: create demo users and patients (once) for the web app."""
    settings = load_settings()
    engine = database.make_engine(settings.db_url)
    database.upgrade(engine)
    try:
        created = demo.seed(
            uow_factory(engine),
            load_knowledge(),
            examples,
            today=date.today(),  # the clock is read here, at the edge
            now=datetime.now(UTC),
            development=settings.development,
        )
    finally:
        engine.dispose()
    if created:
        out.print(f"demo patients created: {', '.join(created)}", highlight=False)
    else:
        out.print("demo patients already there", highlight=False)
    for username, role, password in demo.DEMO_USERS:
        out.print(f"demo {role}: {username} / {password}", highlight=False, markup=False)
