"""``triggerpath demo-data``: demo patients and users for the web app (development only).

Declared in ``cli/__init__.py`` by one ``lazy(...)`` line. ``scripts/run`` calls it with
``--dev-admin`` so that every start prints sign-ins that work: the demo users and the
development ``admin`` with a new one-time password.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from triggerpath.config import load_settings
from triggerpath.entrypoints.cli.app import app, user_errors
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import load_knowledge

if TYPE_CHECKING:
    from triggerpath.services.ports import UowFactory

DEV_ADMIN = "admin"


@app.command("demo-data")
@user_errors
def demo_data(
    examples: Annotated[
        Path, typer.Option(help="the examples folder (courses/ and assessments/)")
    ] = Path("examples"),
    dev_admin: Annotated[
        bool,
        typer.Option(
            "--dev-admin",
            help="also create the development admin 'admin', or give it a new one-time "
            "password, and print it",
        ),
    ] = False,
) -> None:
    """Development only: create demo users and patients (once) for the web app."""
    from triggerpath.adapters import database
    from triggerpath.bootstrap import uow_factory
    from triggerpath.entrypoints.web import demo

    settings = load_settings()
    if dev_admin and not settings.development:
        raise InvalidInput.single(
            "--dev-admin", f"only in development (TRIGGERPATH_ENV={settings.env})"
        )
    engine = database.make_engine(settings.db_url)
    database.upgrade(engine)
    try:
        factory = uow_factory(engine)
        now = datetime.now(UTC)  # the clock is read here, at the edge
        created = demo.seed(
            factory,
            load_knowledge(),
            examples,
            today=date.today(),
            now=now,
            development=settings.development,
        )
        admin_password = _reset_dev_admin(factory, now) if dev_admin else None
    finally:
        engine.dispose()
    # plain lines (never wrapped): scripts/run and people copy the sign-ins from here
    typer.echo(f"data directory: {settings.data_dir}")
    typer.echo(
        f"demo patients created: {', '.join(created)}" if created else "demo patients already there"
    )
    for username, role, password in demo.DEMO_USERS:
        typer.echo(f"demo {role}: {username} / {password}")
    if admin_password is not None:
        typer.echo(
            f"development admin: {DEV_ADMIN} / {admin_password} "
            "(one-time: a new one at every start of scripts/run)"
        )


def _reset_dev_admin(factory: UowFactory, now: datetime) -> str:
    """Create ``admin`` or give it a new random password (and the admin role); return it."""
    from triggerpath.services import users as user_service

    with factory() as uow:
        password = user_service.reset_dev_admin(uow, now)
        uow.commit()
    return password
