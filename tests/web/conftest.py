"""Browser tests: the web app on a temporary SQLite database, driven by Debian's Chromium.

The app runs in-process under uvicorn (a background thread) on 127.0.0.1 and a free port;
Playwright drives ``/usr/bin/chromium`` (never a downloaded browser). Without Chromium the
tests FAIL, they do not skip: ``scripts/test`` installs it when missing. Screenshots go to
``test-artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from triggerpath.adapters import database
from triggerpath.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork
from triggerpath.bootstrap import uow_factory
from triggerpath.config import Settings
from triggerpath.entrypoints.api import create_app
from triggerpath.entrypoints.web import demo
from triggerpath.knowledge import load_knowledge
from triggerpath.services import users

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("TRIGGERPATH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 768, "height": 1024}


@dataclass
class App:
    url: str
    today: date
    users: dict[str, str]

    def at(self, path: str) -> str:
        return self.url + path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    data = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{data / 'triggerpath.db'}"
    engine = database.make_engine(url)
    database.upgrade(engine)
    now = datetime.now(UTC)
    accounts = {
        "e2e.clinician": "clinician",
        "e2e.nurse": "nurse",
        "e2e.viewer": "viewer",
        "e2e.admin": "admin",
    }
    with UnitOfWork(engine) as uow:
        for name, role in accounts.items():
            users.create_user(
                uow, username=name, role=role, password=PASSWORD, now=now, created_by=None
            )
        uow.commit()
    demo.seed(
        uow_factory(engine),
        load_knowledge(),
        ROOT / "examples",
        today=date.today(),
        now=now,
        development=True,
    )
    settings = Settings(
        env="development",
        data_dir=data,
        database_url=url,
        secret_key=secrets.token_urlsafe(40),
        jwt_signing_key=secrets.token_urlsafe(40),
        cookie_secure=False,
    )
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, engine=engine),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web app did not start", pytrace=False)
        time.sleep(0.05)
    try:
        yield App(f"http://127.0.0.1:{port}", date.today(), {**accounts})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium (scripts/test does "
            "'apt-get install -y chromium'); browser tests never download a browser.",
            pytrace=False,
        )
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda m: print("console:", m.type, m.text) if m.type in ("error", "warning") else None,
    )
    pg.on("pageerror", lambda exc: print("pageerror:", exc))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def login(page: Page, app: App, username: str = "e2e.clinician") -> None:
    page.goto(app.at("/app/login"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/app/**")


UNLABELLED_JS = """
() => {
  const bad = [];
  const named = (el) => {
    if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return true;
    const labels = el.labels ? [...el.labels] : [];
    if (labels.some(l => l.textContent.trim())) return true;
    return false;
  };
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden' || el.closest('template')) continue;
    if (!named(el)) bad.push(el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!(el.textContent.trim() || el.getAttribute('aria-label'))) {
      bad.push(el.outerHTML.slice(0, 120));
    }
  }
  for (const el of document.querySelectorAll('[role=button]')) {
    if (!named(el) && !el.textContent.trim()) bad.push(el.outerHTML.slice(0, 120));
  }
  return bad;
}
"""


def assert_labelled(page: Page) -> None:
    """Every control on the page has a label (or an accessible name)."""
    bad: Any = page.evaluate(UNLABELLED_JS)
    assert bad == [], f"controls without a label on {page.url}: {bad}"


def assert_no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{page.url} scrolls sideways by {overflow}px"
