"""``scripts/run`` as the README describes it: it serves where it says (``--port`` included),
prints sign-ins that work (the demo users and the development admin's one-time password), and
uses the same data directory as the CLI, so ``triggerpath users list`` afterwards shows the
clinic it started. HOME is a temporary folder and TRIGGERPATH_DATA_DIR is unset: the default
data directory is what is tested.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .docs_runner import REPO, free_port

DEADLINE_S = 120


def _login(base: str, username: str, password: str) -> int:
    request = urllib.request.Request(
        f"{base}/api/v1/auth/login",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_healthy(base: str, proc: subprocess.Popen[str]) -> None:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        assert proc.poll() is None, "scripts/run exited early"
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer at {base}/healthz within {DEADLINE_S} s")


def _wait_for(log: Path, text: str) -> str:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        printed = log.read_text(encoding="utf-8")
        if text in printed:
            return printed
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never printed:\n{log.read_text(encoding='utf-8')}")


def test_scripts_run_serves_where_it_says_with_working_sign_ins(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIGGERPATH_", "XDG_"))}
    env["HOME"] = str(tmp_path)
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(REPO / "scripts" / "run"), "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, proc)
        printed = _wait_for(log, "Ctrl-C stops.")  # the banner follows the first answer
        assert f"{base}/app/" in printed, printed
        assert "http://127.0.0.1:8000" not in printed
        admin = re.search(r"development admin: (\S+) / (\S+)", printed)
        assert admin, printed
        assert _login(base, admin.group(1), admin.group(2)) == 200
        for user, password in re.findall(r"demo \w+: (\S+) / (\S+)", printed):
            assert _login(base, user, password) == 200, user
        assert _login(base, admin.group(1), "not-the-password") == 401
        data_dir = tmp_path / ".local" / "share" / "triggerpath"
        assert f"data directory: {data_dir}" in printed
        listed = subprocess.run(
            [str(REPO / ".venv" / "bin" / "triggerpath"), "users", "list"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        assert {"admin", "demo.clinician", "demo.nurse"} <= {
            line.split()[0] for line in listed.stdout.splitlines() if line.strip()
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_second_start_gives_the_admin_a_new_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERPATH_")}
    env["TRIGGERPATH_DATA_DIR"] = str(tmp_path / "data")
    command = [str(REPO / ".venv" / "bin" / "triggerpath"), "demo-data", "--dev-admin"]
    passwords = []
    for _ in range(2):
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        found = re.search(r"development admin: admin / (\S+)", done.stdout)
        assert found, done.stdout
        passwords.append(found.group(1))
    assert passwords[0] != passwords[1]
    refused = subprocess.run(
        command,
        cwd=REPO,
        env={
            **env,
            "TRIGGERPATH_ENV": "production",
            "TRIGGERPATH_SECRET_KEY": secrets.token_urlsafe(48),
            "TRIGGERPATH_JWT_SIGNING_KEY": secrets.token_urlsafe(48),
            "TRIGGERPATH_CDS_FHIR_SERVER_ALLOWLIST": "https://fhir.example.org/r4/",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "--dev-admin: only in development" in refused.stderr
