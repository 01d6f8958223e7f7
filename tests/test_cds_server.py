"""The shipped server, really started: ``triggerpath serve --workers 2`` in production mode.

The issue's functional "done when" against a real process tree (uvicorn supervisor and two
workers sharing a SQLite database): unsigned and replayed calls refused, the same
hookInstance twice answers the same cards, a 4 MiB prefetch is answered, /readyz only after
warm-up, and SIGTERM stops it gracefully with the queued card writes flushed. Timing is
measured by ``bench/cds_bench.py``, not here. Generated records only (no ``../shared``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from .cds_helpers import EhrKeys, bundle, condition, hook_request, patient, tpi_service_request

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, port: int, keys: EhrKeys, db: Path, process: subprocess.Popen[bytes]):
        self.port, self.keys, self.db, self.process = port, keys, db, process
        self.base = f"http://127.0.0.1:{port}"

    def headers(self, path: str, token: str | None = None) -> dict[str, str]:
        token = token or self.token(path)
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def token(self, path: str) -> str:
        return self.keys.token(f"{self.base}{path}", now=datetime.now(UTC))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("cds-server")
    keys, port, db = EhrKeys(), _free_port(), folder / "tp.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERPATH_")}
    env.update(
        {
            "TRIGGERPATH_ENV": "production",
            "TRIGGERPATH_SECRET_KEY": secrets.token_urlsafe(48),
            "TRIGGERPATH_JWT_SIGNING_KEY": secrets.token_urlsafe(48),
            "TRIGGERPATH_DATABASE_URL": f"sqlite:///{db}",
            "TRIGGERPATH_DATA_DIR": str(folder / "data"),
            "TRIGGERPATH_CDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "TRIGGERPATH_CDS_TRUSTED_CLIENTS": json.dumps({keys.issuer: {"jwks": keys.jwks()}}),
            "TRIGGERPATH_CDS_FHIR_SERVER_ALLOWLIST": "https://ehr.example.org/fhir/",
        }
    )
    cli = str(BIN / "triggerpath")
    private = 0o077  # umask: production refuses a database file others can read
    subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True, umask=private)
    log = (folder / "server.log").open("wb")
    cmd = [cli, "serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, umask=private)
    s = Server(port, keys, db, process)
    try:
        _wait_ready(s, folder / "server.log")
        yield s
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_ready(s: Server, log: Path) -> None:
    deadline = time.monotonic() + 180  # a busy 2-core host loads the knowledge slowly
    while time.monotonic() < deadline:
        assert s.process.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.get(f"{s.base}/readyz", timeout=5)
            if r.status_code == 200:
                assert r.json()["status"] == "ready"
                return
        time.sleep(0.3)
    pytest.fail(f"the server was not ready in 180 s: {log.read_text()[-3000:]}")


def _order_select(hook_instance: str | None = None, **extra_prefetch: Any) -> bytes:
    prefetch = {
        "patient": patient("p1"),
        "conditions": bundle(condition("M54.50", rid="lbp"), kind="searchset"),
        "medicationRequests": None,
        "allergies": None,
        **extra_prefetch,
    }
    body = hook_request(
        "order-select",
        "p1",
        prefetch,
        draft_orders=bundle(tpi_service_request(pid="p1")),
        selections=["ServiceRequest/tpi-1"],
    )
    if hook_instance:
        body["hookInstance"] = hook_instance
    return orjson.dumps(body)


PATH = "/cds-services/order-select"


def test_unsigned_and_replayed_calls_are_refused(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=60) as c:
        unsigned = c.post(
            PATH, content=_order_select(), headers={"content-type": "application/json"}
        )
        token = server.token(PATH)
        first = c.post(PATH, content=_order_select(), headers=server.headers(PATH, token))
        # new connections: the replay may land on the other worker; the store is shared
        replays = [
            httpx.post(
                f"{server.base}{PATH}",
                content=_order_select(),
                headers=server.headers(PATH, token),
                timeout=60,
            ).status_code
            for _ in range(4)
        ]
    assert unsigned.status_code == 401
    assert first.status_code == 200, first.text
    assert replays == [401] * 4


def test_the_same_hook_instance_twice_is_200_twice_with_the_same_cards(server: Server) -> None:
    body = _order_select(str(uuid.uuid4()))
    with httpx.Client(base_url=server.base, timeout=60) as c:
        one = c.post(PATH, content=body, headers=server.headers(PATH))
        two = c.post(PATH, content=body, headers=server.headers(PATH))
    assert (one.status_code, two.status_code) == (200, 200)
    assert one.json()["cards"] and one.content == two.content


def test_a_4_mib_prefetch_is_answered(server: Server) -> None:
    filler = bundle(*(condition(f"Z{i:05d}", rid=f"x{i}") for i in range(20_000)), kind="searchset")
    body = _order_select(notOneOfOurs=filler)
    assert len(body) >= 4 * 1_048_576
    r = httpx.post(f"{server.base}{PATH}", content=body, headers=server.headers(PATH), timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["cards"]


def test_sigterm_stops_gracefully_and_flushes_the_cards(server: Server) -> None:
    """Runs last in this module: the cards of the calls above are in the database after."""
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=90) == 0
    engine = sa.create_engine(f"sqlite:///{server.db}")
    with engine.connect() as conn:
        cards = conn.execute(sa.text("SELECT count(*) FROM cds_cards")).scalar_one()
        answers = conn.execute(sa.text("SELECT count(*) FROM cds_hook_calls")).scalar_one()
    engine.dispose()
    assert cards > 0 and answers >= 3  # first call, repeated instance (once), the 4 MiB call
