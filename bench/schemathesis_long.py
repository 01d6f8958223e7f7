"""The long schemathesis run of issue 14 §12 (target: >= 50,000 generated requests on
PostgreSQL, every check), written to ``bench/results/schemathesis.{json,md}``.

It runs the suite's own harness (``tests/service/test_schemathesis.py``, PostgreSQL only,
with a throwaway database per process, the app built by ``create_app`` in-process over
ASGI) with more examples, a wall-time budget and ``--shards`` processes that split the
(operation, mode) slots between them, then adds up their reports. The CI suite runs the
same test with 8 examples per operation and mode.

    .venv/bin/python bench/schemathesis_long.py --examples 2000 --seconds 1500 --shards 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TARGET = 50_000
TEST = "tests/service/test_schemathesis.py"


def cpu_model() -> str:
    """The CPU's model name (Linux), for the figures' context."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run_shards(examples: int, seconds: float, shards: int, tmp: Path) -> list[dict[str, Any]]:
    """Start one pytest per shard (in parallel) and collect their JSON reports."""
    procs = []
    for i in range(shards):
        env = {
            **os.environ,
            "TRIGGERPATH_SCHEMATHESIS_EXAMPLES": str(examples),
            "TRIGGERPATH_SCHEMATHESIS_SECONDS": str(seconds),
            "TRIGGERPATH_SCHEMATHESIS_SHARD": f"{i}/{shards}",
            "TRIGGERPATH_SCHEMATHESIS_REPORT": str(tmp / f"shard{i}.json"),
        }
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST]
        cmd += ["-k", "postgresql"]
        log = (tmp / f"shard{i}.log").open("w")
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log), log))
    codes = []
    for proc, log in procs:
        # the harness stops itself at the budget; the margin covers setup and teardown
        codes.append(proc.wait(timeout=seconds + 600))
        log.close()
    reports = []
    for i in range(shards):
        path = tmp / f"shard{i}.json"
        if not path.exists():
            tail = (tmp / f"shard{i}.log").read_text()[-3000:]
            raise SystemExit(f"shard {i} wrote no report (exit {codes[i]}):\n{tail}")
        reports.append({**json.loads(path.read_text()), "pytest_exit_code": codes[i]})
    return reports


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Add the shards' counts up (they cover disjoint slots)."""
    responses: Counter[str] = Counter()
    by_op: Counter[str] = Counter()
    by_check: Counter[str] = Counter()
    for r in reports:
        responses.update(r["responses"])
        by_op.update(r["requests_by_operation"])
        by_check.update(r["failures_by_check"])
    return {
        "requests": sum(r["requests"] for r in reports),
        "operations": reports[0]["operations"],
        "operations_reached": len(by_op),
        "failures": sum(r["failures"] for r in reports),
        "failures_by_check": dict(sorted(by_check.items())),
        "failures_by_operation_and_check": [
            f for r in reports for f in r["failures_by_operation_and_check"]
        ],
        "responses": dict(sorted(responses.items())),
        "requests_by_operation": dict(sorted(by_op.items())),
        "shards": [
            {k: r[k] for k in ("shard", "requests", "wall_seconds", "pytest_exit_code")}
            for r in reports
        ],
    }


CHECKS = (
    "every schemathesis 4 check except ignored_auth (credentials are replaced by real role "
    "keys; test_authz proves auth) and positive_data_acceptance (cross-field clinical 422s, "
    "ASVS V13.1.5 open item): not_a_server_error, status_code_conformance, "
    "content_type_conformance, response_headers_conformance, response_schema_conformance, "
    "negative_data_rejection, missing_required_header, unsupported_method, "
    "allow_header_conformance (the stateful checks ensure_resource_availability, "
    "use_after_free, object_level_authorization need stateful links and do not fire on "
    "single requests); /cds-services/*: not_a_server_error only (CDS Hooks error format, "
    "open item)"
)


def markdown(result: dict[str, Any]) -> str:
    m, t = result["machine"], result["totals"]
    lines = [
        "# Schemathesis long run (issue 14 §12)",
        "",
        f"Run {result['run_at']} on {m['cpu_model']}, {m['cpu_count']} CPUs, Python "
        f"{m['python']}, load average at start {m['load_average_at_start']} (shared machine).",
        "",
        f"Command: `{result['command']}`",
        "",
        "- backend: PostgreSQL (throwaway database per shard), app in-process over ASGI",
        f"- requests: **{t['requests']}** (target {TARGET}: "
        f"{'met' if result['target_met'] else 'NOT met'})",
        f"- operations: {t['operations']} (reached: {t['operations_reached']}), "
        "positive + negative data",
        f"- wall time: {result['wall_seconds']} s, {result['shards_count']} processes",
        f"- checks: {CHECKS}",
        f"- failures: **{t['failures']}**",
        "",
        "| check | failures |",
        "|---|---|",
        *[f"| {c} | {n} |" for c, n in t["failures_by_check"].items()],
        "",
        "| operation | check | count |",
        "|---|---|---|",
        *[
            f"| {f['operation']} | {f['check']} | {f['count']} |"
            for f in t["failures_by_operation_and_check"]
        ],
        "",
        "Responses: " + ", ".join(f"{k}={v}" for k, v in t["responses"].items()),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=1500.0)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    started = datetime.now(UTC)
    began, info = time.monotonic(), machine()
    with tempfile.TemporaryDirectory() as tmp:
        reports = run_shards(args.examples, args.seconds, args.shards, Path(tmp))
    totals = merge(reports)
    result = {
        "run_at": started.isoformat(timespec="seconds"),
        "command": "python bench/schemathesis_long.py "
        f"--examples {args.examples} --seconds {args.seconds:g} --shards {args.shards}",
        "machine": {**info, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "wall_seconds": round(time.monotonic() - began, 1),
        "shards_count": args.shards,
        "target_requests": TARGET,
        "target_met": totals["requests"] >= TARGET,
        "checks": CHECKS,
        "totals": totals,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "schemathesis.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "schemathesis.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
