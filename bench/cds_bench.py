"""CDS Hooks benchmark of what ships: the real server in production mode, signed calls.

1. Starts ``triggerpath serve --workers <CPU count>`` with ``TRIGGERPATH_ENV=production``,
   random strong secrets, a throwaway PostgreSQL database (SQLite with ``--sqlite``) and a
   trusted EHR whose JWKS is inline in ``TRIGGERPATH_CDS_TRUSTED_CLIENTS``; waits for
   ``/readyz`` (ready only after warm-up).
2. Functional checks (the issue's "done when"): an unsigned call and a reused ``jti`` are
   refused; the same ``hookInstance`` twice answers 200 twice with the same cards; a 4 MiB
   request (real prefetch plus an unknown prefetch key) answers 200.
3. Load: a separate load-generator process (:mod:`bench.cds_load`) sends a warm-up, then
   ``--requests`` (1,200) signed calls, each with a fresh ``jti`` and ``hookInstance``, at
   4 x CPU-count connections: patient-view and order-select (a draft TPI ServiceRequest
   and lidocaine order) over 24 real Synthea patients. p50/p90/p99/max, req/s, errors, and
   every worker's garbage-collection pauses.
4. ``--profile``: a second load run while ``py-spy`` samples one worker; the hottest
   functions go to ``bench/results/cds-profile.md``.
5. In-process side by side: evaluation per Synthea bundle against bare orjson parsing.

Bounded in count and time, loopback only (127.0.0.1). Results: bench/results/cds.json, .md.
Skips (exit 0) where ../shared/data is absent.

    .venv/bin/python -m bench.cds_bench [--requests 1200] [--profile] [--sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "synthea-bundles"
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
ISSUER = "https://ehr.bench.example"
PATIENTS = 24
PLACEHOLDER = "@@HOOK_INSTANCE@@"
TARGET_P99_MS = 50.0
#: The peer figure as issue 16 reports it (the AHRQ CQL engine is not part of this repo).
AHRQ_PEER = {
    "source": "issue 16 (measured in an earlier session on the same Synthea bundles; "
    "not re-measured here)",
    "triggerpath_ms_per_patient": "8.5-12.9",
    "speedup_vs_ahrq_pain_management_cql": 24,
}


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[k]


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


# --------------------------------------------------------------------------- the EHR
class Ehr:
    """The trusted EHR: an ES384 key whose public JWKS is given inline to the server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.key = ec.generate_private_key(ec.SECP384R1())

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "bench-1", "alg": "ES384", "use": "sig"})
        return {"keys": [jwk]}

    def token(self, path: str, jti: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "bench",
            "aud": f"{self.base}{path}",
            "iat": now,
            "exp": now + 600,
            "jti": jti or str(uuid.uuid4()),
        }
        return jwt.encode(
            claims, self.key, algorithm="ES384", headers={"kid": "bench-1", "typ": "JWT"}
        )


# --------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def database(use_sqlite: bool, folder: Path) -> Iterator[str]:
    """A throwaway PostgreSQL database (dropped after), or a SQLite file in ``folder``."""
    if use_sqlite:
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"tp_bench_{secrets.token_hex(4)}"
    base = "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def service_url(db_url: str) -> str:
    """Production refuses a superuser: the server logs in as a member of the service role
    (``db upgrade`` runs as the owner and grants that role its privileges)."""
    if not db_url.startswith("postgresql"):
        return db_url
    import psycopg
    from psycopg import sql

    name = db_url.rsplit("/", 1)[1]
    role = sql.SQL("CREATE ROLE {} LOGIN IN ROLE triggerpath_service").format(sql.Identifier(name))
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        admin.execute(role)
    return f"postgresql+psycopg://{name}@127.0.0.1:5432/{name}"


def server_env(db_url: str, folder: Path, ehr: Ehr) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERPATH_")}
    env.update(
        {
            "TRIGGERPATH_ENV": "production",
            "TRIGGERPATH_SECRET_KEY": secrets.token_urlsafe(48),
            "TRIGGERPATH_JWT_SIGNING_KEY": secrets.token_urlsafe(48),
            "TRIGGERPATH_DATABASE_URL": db_url,
            "TRIGGERPATH_DATA_DIR": str(folder / "data"),
            "TRIGGERPATH_CDS_PUBLIC_BASE_URL": ehr.base,
            "TRIGGERPATH_CDS_TRUSTED_CLIENTS": json.dumps({ISSUER: {"jwks": ehr.jwks()}}),
            "TRIGGERPATH_CDS_GC_STATS_DIR": str(folder / "gc"),
            "TRIGGERPATH_CDS_FHIR_SERVER_ALLOWLIST": "https://ehr.bench.example/fhir/",
        }
    )
    return env


def start_server(
    env: dict[str, str], port: int, workers: int, log: Path
) -> subprocess.Popen[bytes]:
    """``triggerpath db upgrade`` then ``triggerpath serve --workers N``; wait for /readyz."""
    upgrade = [str(BIN / "triggerpath"), "db", "upgrade"]
    subprocess.run(upgrade, env=env, check=True, capture_output=True, umask=0o077)
    env = {**env, "TRIGGERPATH_DATABASE_URL": service_url(env["TRIGGERPATH_DATABASE_URL"])}
    cmd = [str(BIN / "triggerpath"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    out = log.open("wb")
    server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, umask=0o077)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the server did not become ready in 120 s")


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes under the supervisor (not multiprocessing's tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == parent and b"resource_tracker" not in cmdline:
                out.append(int(stat.parent.name))
    return sorted(out)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads) so far; gone ones count 0."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def database_pids(db_url: str) -> list[int]:
    """The PostgreSQL backends serving the bench database (empty for SQLite)."""
    if not db_url.startswith("postgresql"):
        return []
    import psycopg

    name = db_url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchall()
    return [int(r[0]) for r in rows]


class CpuMeter:
    """CPU seconds spent by the workers and the database backends during one run: a
    per-request figure that holds on a shared machine, where wall-clock latency does not."""

    def __init__(self, workers: list[int], db_url: str) -> None:
        self.workers, self.db_url = workers, db_url
        self.db = database_pids(db_url)
        self.start = (cpu_seconds(self.workers), cpu_seconds(self.db))

    def per_request_ms(self, requests: int) -> dict[str, float]:
        db = sorted(set(self.db) | set(database_pids(self.db_url)))
        used = (cpu_seconds(self.workers) - self.start[0], cpu_seconds(db) - self.start[1])
        n = max(requests, 1)
        return {
            "workers_ms": used[0] * 1000 / n,
            "database_ms": used[1] * 1000 / n,
            "total_ms": (used[0] + used[1]) * 1000 / n,
        }


def stop_server(server: subprocess.Popen[bytes]) -> float:
    """SIGTERM (graceful: in-flight requests finish, queued writes flushed); seconds taken."""
    t0 = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    return time.monotonic() - t0


# --------------------------------------------------------------------------- requests
def prefetch_of(bundle: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What a conformant EHR sends for TriggerPath's prefetch templates."""
    res = [e["resource"] for e in bundle["entry"]]
    pat = next(r for r in res if r["resourceType"] == "Patient")

    def ss(items: list[dict[str, Any]]) -> dict[str, Any] | None:
        return (
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": r} for r in items],
            }
            if items
            else None
        )

    def latest(code: str) -> dict[str, Any] | None:
        obs = [
            r
            for r in res
            if r["resourceType"] == "Observation"
            and any(c.get("code") == code for c in r["code"].get("coding", []))
        ]
        obs.sort(key=lambda r: r.get("effectiveDateTime", ""), reverse=True)
        return ss(obs[:1])

    def of(kind: str, *statuses: str) -> dict[str, Any] | None:
        return ss(
            [
                r
                for r in res
                if r["resourceType"] == kind and (not statuses or r.get("status") in statuses)
            ]
        )

    active = ("active", "recurrence", "relapse")
    conditions = [
        r
        for r in res
        if r["resourceType"] == "Condition"
        and r.get("clinicalStatus", {}).get("coding", [{}])[0].get("code") in active
    ]
    return pat["id"], {
        "patient": pat,
        "conditions": ss(conditions),
        "medicationRequests": of("MedicationRequest", "active", "on-hold"),
        "allergies": of("AllergyIntolerance"),
        "medicationStatements": None,
        "weight": latest("29463-7"),
        "height": latest("8302-2"),
        "pain": latest("72514-3"),
        "pregnancy": None,
        "tpiProcedures": None,
        "anestheticAdministrations": None,
        "serviceRequests": of("ServiceRequest", "active", "on-hold"),
    }


def draft_orders(pid: str) -> dict[str, Any]:
    subject = {"reference": f"Patient/{pid}"}
    tpi = {
        "resourceType": "ServiceRequest",
        "id": "tpi-1",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "20552"}]},
        "subject": subject,
    }
    lidocaine = {
        "resourceType": "MedicationRequest",
        "id": "la-1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Lidocaine 1% injection"},
        "subject": subject,
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mL"}}]}],
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": tpi}, {"resource": lidocaine}],
    }


def hook_body(hook: str, pid: str, prefetch: dict[str, Any], hook_instance: str) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/bench", "patientId": pid}
    if hook == "order-select":
        context["draftOrders"] = draft_orders(pid)
        context["selections"] = ["ServiceRequest/tpi-1", "MedicationRequest/la-1"]
    return {"hook": hook, "hookInstance": hook_instance, "context": context, "prefetch": prefetch}


def pick_patients(files: list[Path], n: int) -> list[Path]:
    """n bundles spread evenly over the sorted list (deterministic)."""
    step = max(1, len(files) // n)
    return files[::step][:n]


def write_templates(files: list[Path], folder: Path) -> tuple[list[str], list[str], list[int]]:
    """One body template per patient and hook (placeholder hookInstance); paths; sizes."""
    paths, templates, sizes = [], [], []
    for i, f in enumerate(files):
        pid, prefetch = prefetch_of(orjson.loads(f.read_bytes()))
        for hook in ("patient-view", "order-select"):
            raw = orjson.dumps(hook_body(hook, pid, prefetch, PLACEHOLDER))
            t = folder / f"t{i}-{hook}.json"
            t.write_bytes(raw)
            templates.append(str(t))
            paths.append(f"/cds-services/{hook}")
            sizes.append(len(raw))
    return templates, paths, sizes


def run_load(
    ehr: Ehr,
    port: int,
    templates: list[str],
    paths: list[str],
    n: int,
    concurrency: int,
    folder: Path,
    tag: str,
) -> dict[str, Any]:
    """Pre-sign n calls (fresh jti and hookInstance each), run the load-generator process."""
    requests = [
        (i % len(templates), str(uuid.uuid4()), ehr.token(paths[i % len(templates)]))
        for i in range(n)
    ]
    plan = {
        "port": port,
        "concurrency": concurrency,
        "max_seconds": 180,
        "templates": templates,
        "paths": paths,
        "requests": requests,
    }
    plan_file, out_file = folder / f"plan-{tag}.json", folder / f"out-{tag}.json"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "bench.cds_load", str(plan_file), str(out_file)],
        cwd=ROOT,
        check=True,
    )
    return dict(json.loads(out_file.read_text(encoding="utf-8")))


def summary(run: dict[str, Any]) -> dict[str, Any]:
    lat = run["latencies_ms"]
    errors = sum(1 for s in run["statuses"] if s != 200)
    return {
        "concurrency": run["concurrency"],
        "requests": len(lat),
        "errors": errors,
        "status_counts": {str(s): run["statuses"].count(s) for s in sorted(set(run["statuses"]))},
        "throughput_rps": len(lat) / run["elapsed_s"],
        "p50_ms": pct(lat, 0.5),
        "p90_ms": pct(lat, 0.9),
        "p99_ms": pct(lat, 0.99),
        "max_ms": max(lat),
        "mean_ms": statistics.fmean(lat),
    }


# --------------------------------------------------------------------------- checks
def functional_checks(ehr: Ehr, port: int, biggest: Path) -> dict[str, Any]:
    """Unsigned and replayed calls refused, a repeated hookInstance 200 twice, 4 MiB 200."""
    url = f"http://127.0.0.1:{port}"
    pid, prefetch = prefetch_of(orjson.loads(biggest.read_bytes()))
    path = "/cds-services/order-select"
    body = orjson.dumps(hook_body("order-select", pid, prefetch, str(uuid.uuid4())))
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=url, timeout=30) as c:
        unsigned = c.post(path, content=body, headers=headers).status_code
        token = ehr.token(path)
        first = c.post(path, content=body, headers={**headers, "authorization": f"Bearer {token}"})
        replay = c.post(
            path, content=body, headers={**headers, "authorization": f"Bearer {token}"}
        ).status_code
        again = c.post(
            path, content=body, headers={**headers, "authorization": f"Bearer {ehr.token(path)}"}
        )
        big = _four_mib(pid, prefetch, biggest)
        large = c.post(
            path, content=big, headers={**headers, "authorization": f"Bearer {ehr.token(path)}"}
        )
    return {
        "unsigned_status": unsigned,
        "reused_jti_status": replay,
        "same_hook_instance_statuses": [first.status_code, again.status_code],
        "same_hook_instance_same_cards": first.status_code == 200
        and first.content == again.content,
        "cards": len(first.json().get("cards", [])) if first.status_code == 200 else None,
        "large_request_bytes": len(big),
        "large_request_status": large.status_code,
        "passed": unsigned in (401, 403)
        and replay in (401, 403)
        and first.status_code == again.status_code == 200
        and first.content == again.content
        and large.status_code == 200,
    }


def _four_mib(pid: str, prefetch: dict[str, Any], bundle: Path) -> bytes:
    """The real prefetch plus the whole record under an unknown key, repeated to >= 4 MiB."""
    record = orjson.loads(bundle.read_bytes())["entry"]
    extra: list[Any] = []
    body = b""
    while len(body) < 4 * 1_048_576:
        extra.extend(record)
        body = orjson.dumps(
            hook_body("order-select", pid, {**prefetch, "wholeRecord": extra}, str(uuid.uuid4()))
        )
    return body


def gc_stats(folder: Path) -> dict[str, Any]:
    """Every worker's GC pauses (written at shutdown), merged."""
    pauses: dict[str, list[float]] = {"0": [], "1": [], "2": []}
    workers = []
    for f in sorted(folder.glob("gc-*.json")):
        data = json.loads(f.read_text())
        workers.append(
            {"pid": data["pid"], "thresholds": data["thresholds"], "frozen_objects": data["frozen"]}
        )
        for g, v in data["pauses_ms"].items():
            pauses[g].extend(v)
    by_gen = {
        f"gen{g}": {
            "count": len(v),
            "total_ms": sum(v),
            "p99_ms": pct(v, 0.99) if v else 0.0,
            "max_ms": max(v, default=0.0),
        }
        for g, v in pauses.items()
    }
    return {"workers": workers, "by_generation": by_gen}


# --------------------------------------------------------------------------- profile
def profile(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    cmd = [
        str(BIN / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "250",
    ]
    cmd += ["--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


#: Frames of the server's plumbing, left out of the inclusive table (they hold every sample).
PLUMBING = (
    "asyncio/",
    "uvicorn/",
    "protocols/http/",
    "multiprocessing/",
    "concurrent/",
    "threading.py",
    "<string>",
    "starlette/",
    "fastapi/",
)
#: Leaf frames that mean a thread was waiting, not working (uvloop waits inside Runner.run).
IDLE = (
    "EpollSelector.select",
    "Condition.wait",
    "_worker (concurrent",
    "Connection._recv",
    "Runner.run (asyncio",
)


def summarize_profile(raw: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive shares of the busy samples, by function, from py-spy's stacks."""
    self_n: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = idle = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        if frames[-1].startswith(IDLE):
            idle += n
            continue
        total += n
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        for f in set(frames):
            if not any(p in f for p in PLUMBING):
                incl[f] = incl.get(f, 0) + n

    def table(d: dict[str, int]) -> list[dict[str, Any]]:
        ranked = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [{"function": k, "share": v / max(total, 1)} for k, v in ranked]

    return {"samples": total, "idle_samples": idle, "self": table(self_n), "inclusive": table(incl)}


def _frame(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    file = where.split(":")[0].rstrip(")")
    parts = Path(file).parts
    short = (
        "/".join(parts[parts.index("site-packages") + 1 :])
        if "site-packages" in parts
        else "/".join(parts[-3:])
    )
    return f"{name} ({short})"


# --------------------------------------------------------------------------- side by side
def evaluation_bench(files: list[Path], repeats: int) -> dict[str, Any]:
    """In-process: patient-view and order-sign per bundle vs parsing the same bytes."""
    from triggerpath.adapters.cds_fhir import FHIR_R4
    from triggerpath.adapters.fhir_r4 import read_bundle
    from triggerpath.knowledge import load_knowledge
    from triggerpath.services.cds import order_hook, patient_view

    kb = load_knowledge()
    now = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)
    rows = []
    for path in files:
        raw = path.read_bytes()
        parse, view, sign = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            orjson.loads(raw)
            t1 = time.perf_counter_ns()
            snap = read_bundle(raw, kb, now=now)
            patient_view(snap, kb, hook_instance="bench", fhir=FHIR_R4)
            t2 = time.perf_counter_ns()
            snap2 = read_bundle(raw, kb, now=now)
            order_hook(
                "order-sign",
                snap2,
                draft_orders(snap2.patient_id or "p"),
                kb,
                hook_instance="bench",
                fhir=FHIR_R4,
            )
            t3 = time.perf_counter_ns()
            parse.append((t1 - t0) / 1e6)
            view.append((t2 - t1) / 1e6)
            sign.append((t3 - t2) / 1e6)
        rows.append((statistics.median(parse), statistics.median(view), statistics.median(sign)))
    p, v, s = ([r[i] for r in rows] for i in range(3))
    return {
        "bundles": len(rows),
        "repeats": repeats,
        "parse_ms": {"p50": pct(p, 0.5), "p95": pct(p, 0.95)},
        "patient_view_ms": {"p50": pct(v, 0.5), "p95": pct(v, 0.95)},
        "order_sign_ms": {"p50": pct(s, 0.5), "p95": pct(s, 0.95)},
        "ratio_patient_view_to_parse_median": pct([b / a for a, b, _ in rows], 0.5),
        "ratio_order_sign_to_parse_median": pct([c / a for a, _, c in rows], 0.5),
    }


# --------------------------------------------------------------------------- report
def write_md(r: dict[str, Any], path: Path) -> None:
    m, load, chk, g = r["machine"], r["load"], r["checks"], r["gc"]["by_generation"]
    lines = [
        "# CDS Hooks benchmark: the shipped server",
        "",
        f"Run {r['run_at']} on {m['cpu_count']} CPUs ({m['cpu_model']}), Python {m['python']}, "
        f"{m['platform']}; load average at start {m['load_average_at_start'][0]:.1f} "
        "(shared machine).",
        f"Command: `{r['command']}`; raw figures in `cds.json`.",
        "",
        f"Server: `{r['server']['command']}` with {r['server']['env']}; "
        f"database {r['server']['database']}. "
        f"Load generator: a separate process, {load['concurrency']} keep-alive connections on "
        "127.0.0.1, every call signed (ES384, fresh jti) with a fresh hookInstance.",
        "",
        "## Done-when checks",
        "",
        f"- unsigned call: {chk['unsigned_status']}; reused jti: {chk['reused_jti_status']}",
        f"- same hookInstance twice: {chk['same_hook_instance_statuses']}, same cards: "
        f"{chk['same_hook_instance_same_cards']}",
        f"- {chk['large_request_bytes'] / 1_048_576:.1f} MiB request: "
        f"{chk['large_request_status']}",
        "",
        f"## Load: {load['requests']} signed calls at {load['concurrency']} concurrent "
        f"({r['load_mix']})",
        "",
        "| req/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {load['throughput_rps']:.0f} | {load['p50_ms']:.1f} | {load['p90_ms']:.1f} | "
        f"{load['p99_ms']:.1f} | {load['max_ms']:.1f} | {load['errors']} |",
        "",
        f"Request bodies: p50 {r['request_bytes']['p50'] / 1024:.1f} KiB, max "
        f"{r['request_bytes']['max'] / 1024:.1f} KiB. "
        f"Target p99 <= {TARGET_P99_MS:.0f} ms, all 200: "
        f"**{'met' if r['met'] else 'not met'}**.",
        "",
        f"CPU per request during the load: workers {r['cpu_per_request']['workers_ms']:.2f} ms, "
        f"database {r['cpu_per_request']['database_ms']:.2f} ms (from /proc; steady under "
        "shared load, unlike latency).",
        "",
        "By hook:",
        "",
        "| hook | requests | p50 ms | p99 ms |",
        "| --- | --- | --- | --- |",
        *(
            f"| {h} | {v['requests']} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} |"
            for h, v in r["by_hook"].items()
        ),
        "",
        "## Garbage collection in the workers (whole run: warm-up, checks, load)",
        "",
        "| generation | collections | total ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {k} | {v['count']} | {v['total_ms']:.1f} | {v['p99_ms']:.2f} | {v['max_ms']:.2f} |"
            for k, v in g.items()
        ),
        "",
        f"Thresholds {r['gc']['workers'][0]['thresholds'] if r['gc']['workers'] else '?'} after "
        "`gc.freeze()` of the warmed-up heap (before: full collections of 93-120 ms, issue 16).",
        "",
    ]
    e = r.get("evaluation")
    if e:
        lines += [
            f"## Side by side, in process ({e['bundles']} Synthea bundles, "
            f"median of {e['repeats']})",
            "",
            "| step | p50 ms | p95 ms |",
            "| --- | --- | --- |",
            f"| orjson parse alone | {e['parse_ms']['p50']:.2f} | {e['parse_ms']['p95']:.2f} |",
            f"| patient-view (parse, map, engine, cards) | {e['patient_view_ms']['p50']:.2f} | "
            f"{e['patient_view_ms']['p95']:.2f} |",
            f"| order-sign | {e['order_sign_ms']['p50']:.2f} | {e['order_sign_ms']['p95']:.2f} |",
            "",
            "patient-view / bare parse per bundle: median "
            f"{e['ratio_patient_view_to_parse_median']:.2f}x "
            f"(order-sign {e['ratio_order_sign_to_parse_median']:.2f}x).",
            "",
        ]
    peer = r["ahrq_peer"]
    lines += [
        "## Peer figure",
        "",
        "AHRQ pain-management CQL on the same bundles: TriggerPath "
        f"{peer['triggerpath_ms_per_patient']} ms per patient, "
        f"{peer['speedup_vs_ahrq_pain_management_cql']}x faster — {peer['source']}.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_profile_md(p: dict[str, Any], path: Path, note: str) -> None:
    lines = [
        "# CDS Hooks server profile (py-spy, one worker under load)",
        "",
        note,
        "",
        f"{p['samples']} busy samples ({p['idle_samples']} more were threads waiting: the "
        "event loop's select, the write-behind and thread-pool queues). Shares are of the busy "
        "samples; inclusive = the function or anything it calls (asyncio, uvicorn and thread "
        "plumbing, Starlette and FastAPI left out). Collapsed stacks for a flame graph "
        "(`flamegraph.pl cds-profile-stacks.txt > cds.svg`): `cds-profile-stacks.txt`.",
        "",
        "## Inclusive",
        "",
        "| share | function |",
        "| --- | --- |",
        *(f"| {x['share']:.1%} | `{x['function']}` |" for x in p["inclusive"]),
        "",
        "## Self (where the CPU time is spent)",
        "",
        "| share | function |",
        "| --- | --- |",
        *(f"| {x['share']:.1%} | `{x['function']}` |" for x in p["self"]),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def by_hook(run: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    out = {}
    for hook in ("patient-view", "order-select"):
        lat = [
            ms
            for ms, t in zip(run["latencies_ms"], run["templates"], strict=True)
            if paths[t].endswith(hook)
        ]
        out[hook] = {"requests": len(lat), "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--requests", type=int, default=1200)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--concurrency", type=int, default=4 * (os.cpu_count() or 1))
    p.add_argument("--repeats", type=int, default=3, help="side-by-side repeats per bundle")
    p.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    p.add_argument("--profile", action="store_true", help="also profile one worker with py-spy")
    p.add_argument("--no-side-by-side", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS / "cds.json")
    args = p.parse_args(argv)
    files = sorted(SHARED.glob("*.json")) if SHARED.is_dir() else []
    if not files:
        print(f"cds_bench: {SHARED} is absent; nothing to measure (skipped).")
        return 0
    result: dict[str, Any] = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.cds_bench "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "ahrq_peer": AHRQ_PEER,
    }
    patients = pick_patients(files, PATIENTS)
    biggest = max(files, key=lambda f: f.stat().st_size)
    folder = Path(tempfile.mkdtemp(prefix="tp-cds-bench-"))
    (folder / "gc").mkdir()
    try:
        with database(args.sqlite, folder) as db_url:
            result.update(_serve_and_load(args, db_url, folder, patients, biggest))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not args.no_side_by_side:
        result["evaluation"] = evaluation_bench(files, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_md(result, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text(encoding="utf-8"))
    return 0 if result["met"] and result["checks"]["passed"] else 1


def _serve_and_load(
    args: argparse.Namespace, db_url: str, folder: Path, patients: list[Path], biggest: Path
) -> dict[str, Any]:
    port = free_port()
    ehr = Ehr(f"http://127.0.0.1:{port}")
    env = server_env(db_url, folder, ehr)
    templates, paths, sizes = write_templates(patients, folder)
    server = start_server(env, port, args.workers, folder / "server.log")
    try:
        checks = functional_checks(ehr, port, biggest)
        run_load(ehr, port, templates, paths, args.warmup, args.concurrency, folder, "warmup")
        meter = CpuMeter(worker_pids(server.pid), db_url)
        run = run_load(ehr, port, templates, paths, args.requests, args.concurrency, folder, "load")
        cpu = meter.per_request_ms(len(run["latencies_ms"]))
        if args.profile:
            _profile_run(ehr, port, templates, paths, args, folder, server.pid)
    finally:
        shutdown_s = stop_server(server)
    load = summary(run)
    return {
        "server": {
            "command": f"triggerpath serve --workers {args.workers}",
            "env": "TRIGGERPATH_ENV=production, random 64-character secrets, inline JWKS in "
            "TRIGGERPATH_CDS_TRUSTED_CLIENTS",
            "database": "SQLite (WAL)"
            if args.sqlite
            else "PostgreSQL 127.0.0.1 (throwaway database)",
            "workers": args.workers,
            "graceful_shutdown_s": shutdown_s,
        },
        "patients": len(patients),
        "load_mix": "patient-view and order-select alternating over "
        f"{len(patients)} Synthea patients",
        "request_bytes": {"p50": pct([float(s) for s in sizes], 0.5), "max": max(sizes)},
        "checks": checks,
        "warmup_requests": args.warmup,
        "load": load,
        "cpu_per_request": cpu,
        "by_hook": by_hook(run, paths),
        "gc": gc_stats(folder / "gc"),
        "met": load["errors"] == 0
        and load["requests"] == args.requests
        and load["p99_ms"] <= TARGET_P99_MS,
    }


def _profile_run(
    ehr: Ehr,
    port: int,
    templates: list[str],
    paths: list[str],
    args: argparse.Namespace,
    folder: Path,
    pid: int,
) -> None:
    workers = worker_pids(pid)
    raw = folder / "profile.txt"
    spy = profile(workers[0], 20, raw)
    time.sleep(1)
    run = run_load(ehr, port, templates, paths, args.requests, args.concurrency, folder, "profile")
    spy.wait(timeout=60)
    if raw.exists():
        s = summary(run)
        note = (
            f"Sampled at 250 Hz during a second run of {s['requests']} signed calls at "
            f"{s['concurrency']} concurrent (p99 under the profiler {s['p99_ms']:.1f} ms). "
            "Command: `python -m bench.cds_bench --profile`."
        )
        prof = summarize_profile(raw)
        shutil.copy(raw, RESULTS / "cds-profile-stacks.txt")  # collapsed stacks: flamegraph.pl
        (RESULTS / "cds-profile.json").write_text(
            json.dumps(prof, indent=2) + "\n", encoding="utf-8"
        )
        write_profile_md(prof, RESULTS / "cds-profile.md", note)


if __name__ == "__main__":
    raise SystemExit(main())
