"""CDS Hooks benchmark (not a test): evaluation cost per Synthea bundle and a loopback load run.

1. ``patient-view`` evaluation per Synthea bundle (raw bytes -> orjson parse -> snapshot ->
   engine -> cards), measured in the same run as parsing the same bytes with orjson alone;
   target: median evaluation <= 2x the bare parse. ``order-sign`` (engine always runs) is
   measured the same way.
2. A load run against a uvicorn server on 127.0.0.1 (a child process; the client is this
   process): ``order-sign`` calls with the record sent as prefetch, at 1, 8 and 32
   concurrent requests; p50/p99 latency and throughput; target p99 < 50 ms at 32.

Bounded in count and time, loopback only. Results: bench/results/cds.json and cds.md.
Skips (exit 0) where ../shared/data is absent.

    .venv/bin/python -m bench.cds_bench [--repeats 7] [--requests 300] [--levels 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "synthea-bundles"
RESULTS = ROOT / "bench" / "results"
NOW = datetime(2020, 1, 1, 12, 0, tzinfo=UTC)
MAX_SECONDS_PER_LEVEL = 60.0


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[k]


def tpi_order(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "ServiceRequest",
                    "id": "tpi-1",
                    "status": "draft",
                    "intent": "order",
                    "code": {
                        "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "20552"}]
                    },
                    "subject": {"reference": f"Patient/{pid}"},
                }
            },
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "la-1",
                    "status": "draft",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": "Lidocaine 1% injection"},
                    "subject": {"reference": f"Patient/{pid}"},
                    "dosageInstruction": [
                        {"doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mL"}}]}
                    ],
                }
            },
        ],
    }


# --------------------------------------------------------------------------- part 1
def evaluation_bench(files: list[Path], repeats: int) -> dict[str, Any]:
    from triggerpath.adapters.fhir_r4 import read_bundle
    from triggerpath.knowledge import load_knowledge
    from triggerpath.services.cds import order_hook, patient_view

    kb = load_knowledge()
    rows = []
    for path in files:
        raw = path.read_bytes()
        pid = ""
        parse, view, sign = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            orjson.loads(raw)
            t1 = time.perf_counter_ns()
            snap = read_bundle(raw, kb, now=NOW)
            pv = patient_view(snap, kb, hook_instance="bench")
            t2 = time.perf_counter_ns()
            snap2 = read_bundle(raw, kb, now=NOW)
            pid = snap2.patient_id or "p"
            os_ = order_hook("order-sign", snap2, tpi_order(pid), kb, hook_instance="bench")
            t3 = time.perf_counter_ns()
            parse.append((t1 - t0) / 1e6)
            view.append((t2 - t1) / 1e6)
            sign.append((t3 - t2) / 1e6)
        rows.append(
            {
                "bundle": path.stem.rsplit("_", 1)[-1],  # the Synthea patient uuid
                "bytes": len(raw),
                "parse_ms": statistics.median(parse),
                "patient_view_ms": statistics.median(view),
                "order_sign_ms": statistics.median(sign),
                "patient_view_cards": len(pv.cards),
                "order_sign_cards": len(os_.cards),
            }
        )
    parse_ms = [r["parse_ms"] for r in rows]
    view_ms = [r["patient_view_ms"] for r in rows]
    sign_ms = [r["order_sign_ms"] for r in rows]
    view_ratio = [r["patient_view_ms"] / r["parse_ms"] for r in rows]
    sign_ratio = [r["order_sign_ms"] / r["parse_ms"] for r in rows]
    relevant = [r for r in rows if r["patient_view_cards"]]
    return {
        "bundles": len(rows),
        "repeats": repeats,
        "parse_ms": {"p50": pct(parse_ms, 0.5), "p95": pct(parse_ms, 0.95)},
        "patient_view_ms": {"p50": pct(view_ms, 0.5), "p95": pct(view_ms, 0.95)},
        "order_sign_ms": {"p50": pct(sign_ms, 0.5), "p95": pct(sign_ms, 0.95)},
        "patient_view_with_cards_ms": {
            "n": len(relevant),
            "p50": pct([r["patient_view_ms"] for r in relevant], 0.5) if relevant else None,
        },
        "ratio_patient_view_to_parse": {
            "median_of_medians": pct(view_ms, 0.5) / pct(parse_ms, 0.5),
            "median_per_bundle": pct(view_ratio, 0.5),
            "p95_per_bundle": pct(view_ratio, 0.95),
        },
        "ratio_order_sign_to_parse": {
            "median_of_medians": pct(sign_ms, 0.5) / pct(parse_ms, 0.5),
            "median_per_bundle": pct(sign_ratio, 0.5),
            "p95_per_bundle": pct(sign_ratio, 0.95),
        },
        "target": "median evaluation <= 2x bare orjson parse",
        "met": pct(view_ratio, 0.5) <= 2.0,
        "rows": rows,
    }


# --------------------------------------------------------------------------- part 2
def make_app() -> Any:
    """The app the load run serves (uvicorn --factory): the CDS router, development mode."""
    from fastapi import FastAPI

    from triggerpath.entrypoints.api.cds_hooks import cds_router

    class Settings:
        env = "development"

    app = FastAPI()
    app.include_router(cds_router(Settings(), clock=lambda: NOW))
    return app


def prefetch_of(raw: bytes) -> tuple[str, dict[str, Any]]:
    """What a conformant EHR sends for TriggerPath's prefetch templates."""
    b = orjson.loads(raw)
    res = [e["resource"] for e in b["entry"]]
    pat = next(r for r in res if r["resourceType"] == "Patient")

    def ss(items: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not items:
            return None
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in items],
        }

    def latest(code: str) -> dict[str, Any] | None:
        obs = [
            r
            for r in res
            if r["resourceType"] == "Observation"
            and any(c.get("code") == code for c in r["code"].get("coding", []))
        ]
        obs.sort(key=lambda r: r.get("effectiveDateTime", ""), reverse=True)
        return ss(obs[:1])

    active = ("active", "recurrence", "relapse")
    return pat["id"], {
        "patient": pat,
        "conditions": ss(
            [
                r
                for r in res
                if r["resourceType"] == "Condition"
                and r.get("clinicalStatus", {}).get("coding", [{}])[0].get("code") in active
            ]
        ),
        "medicationRequests": ss(
            [
                r
                for r in res
                if r["resourceType"] == "MedicationRequest" and r["status"] in ("active", "on-hold")
            ]
        ),
        "allergies": ss([r for r in res if r["resourceType"] == "AllergyIntolerance"]),
        "medicationStatements": None,
        "weight": latest("29463-7"),
        "height": latest("8302-2"),
        "pain": latest("72514-3"),
        "pregnancy": None,
        "tpiProcedures": None,
        "anestheticAdministrations": None,
        "serviceRequests": None,
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Conn:
    """A minimal HTTP/1.1 keep-alive client (asyncio streams): far less overhead than httpx."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def load_level(
    host: str, port: int, path: str, bodies: list[bytes], concurrency: int, requests: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    deadline = time.perf_counter() + MAX_SECONDS_PER_LEVEL
    conns = [_Conn(host, port) for _ in range(concurrency)]

    async def worker(conn: _Conn) -> None:
        nonlocal errors
        for i in counter:
            if time.perf_counter() > deadline:
                return
            t0 = time.perf_counter()
            status, _ = await conn.post(path, bodies[i % len(bodies)])
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors += 1

    await asyncio.gather(*(c.post(path, bodies[0]) for c in conns))  # warm-up, not measured
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*(c.close() for c in conns))
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": max(latencies),
        "throughput_rps": len(latencies) / elapsed,
    }


def load_bench(files: list[Path], levels: list[int], requests: int, workers: int) -> dict[str, Any]:
    bodies = []
    sizes = []
    for path in files:
        pid, prefetch = prefetch_of(path.read_bytes())
        body = {
            "hook": "order-sign",
            "hookInstance": str(uuid.uuid4()),
            "context": {
                "userId": "Practitioner/bench",
                "patientId": pid,
                "draftOrders": tpi_order(pid),
            },
            "prefetch": prefetch,
        }
        raw = orjson.dumps(body)
        bodies.append(raw)
        sizes.append(len(raw))
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.cds_bench:make_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/cds-services", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        runs = [
            asyncio.run(
                load_level("127.0.0.1", port, "/cds-services/order-sign", bodies, c, requests)
            )
            for c in levels
        ]
    finally:
        server.terminate()
        server.wait(timeout=10)
    at32 = next((r for r in runs if r["concurrency"] == 32), None)
    return {
        "server": f"uvicorn, {workers} worker process(es), h11, asyncio loop, 127.0.0.1",
        "client": "asyncio HTTP/1.1 keep-alive connections, one per concurrent request, "
        "in the benchmark process (same 2-core machine)",
        "hook": "order-sign with a TPI ServiceRequest and a lidocaine MedicationRequest",
        "request_bytes": {"p50": pct(sizes, 0.5), "max": max(sizes)},
        "levels": runs,
        "target": "p99 < 50 ms at 32 concurrent",
        "met": bool(at32 and at32["p99_ms"] < 50),
    }


def write_md(result: dict[str, Any], path: Path) -> None:
    e = result["evaluation"]
    pv, os_, parse = e["patient_view_ms"], e["order_sign_ms"], e["parse_ms"]
    rpv, ros = e["ratio_patient_view_to_parse"], e["ratio_order_sign_to_parse"]
    load_avg = result["load_average_at_start"][0]
    lines = [
        "# CDS Hooks benchmark",
        "",
        f"Run {result['run_at']} on {result['machine']}, knowledge {result['knowledge_version']}; "
        f"load average at start {load_avg:.1f} (the machine is shared).",
        "Command: `.venv/bin/python -m bench.cds_bench`; raw figures in `cds.json`.",
        "",
        f"## Evaluation per Synthea bundle ({e['bundles']} bundles, "
        f"median of {e['repeats']} runs each)",
        "",
        "| step | p50 ms | p95 ms |",
        "| --- | --- | --- |",
        f"| orjson parse alone | {parse['p50']:.2f} | {parse['p95']:.2f} |",
        f"| patient-view (parse, map, engine, cards) | {pv['p50']:.2f} | {pv['p95']:.2f} |",
        f"| order-sign (engine always runs) | {os_['p50']:.2f} | {os_['p95']:.2f} |",
        "",
        f"patient-view / parse, per bundle: median {rpv['median_per_bundle']:.2f}x, "
        f"p95 {rpv['p95_per_bundle']:.2f}x (order-sign: median {ros['median_per_bundle']:.2f}x). "
        f"Target median <= 2x: **{'met' if e['met'] else 'not met'}**.",
        "",
    ]
    load = result.get("load")
    if load:
        lines += [
            f"## Loopback load run ({load['server']}; {load['hook']})",
            "",
            f"Request body p50 {load['request_bytes']['p50'] / 1024:.1f} KiB (record as prefetch).",
            "",
            "| concurrent | requests | errors | p50 ms | p99 ms | throughput req/s |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in load["levels"]:
            lines.append(
                f"| {r['concurrency']} | {r['requests']} | {r['errors']} | {r['p50_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['throughput_rps']:.0f} |"
            )
        met = "met" if load["met"] else "not met"
        lines += ["", f"Target p99 < 50 ms at 32 concurrent: **{met}**.", ""]
        one = next((r for r in load["levels"] if r["concurrency"] == 1), None)
        if one and not load["met"]:
            service = 1000 / one["throughput_rps"]
            lines += [
                f"One worker serves a call in about {service:.1f} ms (all of it CPU: engine, "
                "cards, JSON and HTTP); with 32 calls in flight on one core each waits for the "
                f"others, about 32 x {service:.1f} = {32 * service:.0f} ms. Meeting the target "
                "needs about 1.5 ms per call or more cores (uvicorn workers behind a load "
                "balancer); this shared 2-core machine also runs the client.",
                "",
            ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    p.add_argument("--levels", default="1,8,32")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--limit", type=int, default=0, help="only the first N bundles (0 = all)")
    p.add_argument("--no-load", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS / "cds.json")
    args = p.parse_args(argv)
    files = sorted(SHARED.glob("*.json")) if SHARED.is_dir() else []
    if not files:
        print(f"cds_bench: {SHARED} is absent; nothing to measure (skipped).")
        return 0
    if args.limit:
        files = files[: args.limit]
    from triggerpath.knowledge import load_knowledge

    result: dict[str, Any] = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "knowledge_version": load_knowledge().version,
        "load_average_at_start": list(os.getloadavg()),
        "evaluation": evaluation_bench(files, args.repeats),
    }
    if not args.no_load:
        levels = [int(x) for x in args.levels.split(",") if x]
        result["load"] = load_bench(files, levels, args.requests, args.workers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_md(result, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
