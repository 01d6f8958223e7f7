"""Start-up time and peak memory of the shipped ``triggerpath`` console script (not a test).

Run: ``.venv/bin/python -m bench.cli_startup [--runs 5] [--baseline REF]``; writes
``bench/results/cli_startup.json`` and ``cli_startup.md``.

Each command is run ``--runs`` times (after one warm-up run that writes the byte-code caches
and the knowledge cache; its figures are kept as ``first_run``) as a child process of this
script: wall time from spawn to exit, CPU time and peak resident set size from the kernel's
``wait4`` accounting of that child. The children get ``PYTHONDONTWRITEBYTECODE`` removed (an
installed package has its byte code) and ``TRIGGERPATH_KNOWLEDGE_CACHE`` set to a fresh
temporary folder (the user's cache is not touched). The figure that counts is the median wall
time and the highest peak RSS of ``triggerpath assess
examples/assessments/ql_chronic_low_back.json`` (targets: 0.5 s, 80 MiB, issue 18); the same
command with the knowledge cache off is measured too.

``--baseline REF`` also measures the same console script on the ``src/`` of a git revision
(exported with ``git archive`` to a temporary folder and put first on ``PYTHONPATH``), for a
before/after comparison on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCRIPT = Path(sys.executable).parent / "triggerpath"
EXAMPLE = "examples/assessments/ql_chronic_low_back.json"
TARGET_S = 0.5
TARGET_MIB = 80.0
CACHE_ENV = "TRIGGERPATH_KNOWLEDGE_CACHE"
#: (arguments, extra environment) of each measured command; the first is the target.
COMMANDS: list[tuple[list[str], dict[str, str]]] = [
    (["assess", EXAMPLE], {}),
    (["assess", EXAMPLE], {CACHE_ENV: "off"}),
    (["--version"], {}),
    (["knowledge", "show", "s000.22"], {}),
    (["--help"], {}),
]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, float]:
    """(wall s, peak RSS MiB, exit code, CPU s user + system) of one run of the script."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(SCRIPT), *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        proc.stderr.close()
    return wall, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def measure(
    argv: list[str], runs: int, env: dict[str, str], extra: dict[str, str]
) -> dict[str, Any]:
    env = {**env, **extra}
    first = run_once(argv, env)  # warm-up: byte-code caches, knowledge cache, page cache
    samples = [run_once(argv, env) for _ in range(runs)]
    walls = [w for w, _, _, _ in samples]
    rss = [r for _, r, _, _ in samples]
    prefix = "".join(f"{k}={v} " for k, v in extra.items())
    return {
        "command": prefix + "triggerpath " + " ".join(argv),
        "runs": runs,
        "first_run": {"wall_s": round(first[0], 3), "cpu_s": round(first[3], 3)},
        "exit_codes": sorted({c for _, _, c, _ in samples}),
        "wall_s": [round(w, 3) for w in walls],
        "median_wall_s": round(statistics.median(walls), 3),
        "median_cpu_s": round(statistics.median(c for _, _, _, c in samples), 3),
        "peak_rss_mib": round(max(rss), 1),
    }


def baseline_env(ref: str, tmp: Path) -> dict[str, str]:
    """An environment whose PYTHONPATH puts ``ref``'s ``src/`` before the installed tree
    (a tree without the knowledge cache ignores ``TRIGGERPATH_KNOWLEDGE_CACHE``)."""
    archive = tmp / "src.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    return {"PYTHONPATH": str(tmp / "src")}


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# CLI start-up",
        "",
        f"Run {result['run_at']} on {m['cpu_model']}, {m['cpu_count']} CPUs, Python "
        f"{m['python']}; load average at start {m['load_average_at_start'][0]} (shared machine).",
        "Command: `.venv/bin/python -m bench.cli_startup`; the shipped console script "
        f"`{result['script']}`, median of {result['runs']} runs after a warm-up run that "
        "writes the byte-code and knowledge caches (a fresh temporary knowledge cache); raw "
        "figures, with each warm-up run's, in `cli_startup.json`.",
        "",
        "| tree | command | median wall s | median CPU s | peak RSS MiB | first run wall s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for tree, rows in result["trees"].items():
        lines += [
            f"| {tree} | `{r['command']}` | {r['median_wall_s']} | {r['median_cpu_s']} "
            f"| {r['peak_rss_mib']} | {r['first_run']['wall_s']} |"
            for r in rows
        ]
    target = result["target"]
    lines += [
        "",
        f"Target for `{target['command']}`: median ≤ {TARGET_S} s and peak RSS ≤ "
        f"{TARGET_MIB} MiB: **{'met' if target['met'] else 'not met'}** "
        f"({target['median_wall_s']} s, {target['peak_rss_mib']} MiB).",
        "",
        "Wall time depends on what else the shared machine runs (load average above); CPU time "
        "(user + system of the child) much less so. The first run after installing or "
        "editing the knowledge validates the YAML and writes the knowledge cache "
        "(`first run`; `docs/cli.md`).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", metavar="REF", help="also measure this git revision")
    args = parser.parse_args()
    if not SCRIPT.exists():
        print(f"cli_startup: {SCRIPT} is missing; run scripts/bootstrap first", file=sys.stderr)
        return 1
    dropped = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", CACHE_ENV)
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    result: dict[str, Any] = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "script": os.path.relpath(SCRIPT, ROOT),
        "runs": args.runs,
        "trees": {},
    }
    with tempfile.TemporaryDirectory(prefix="tp-cache-") as cache:
        env = {**base, CACHE_ENV: cache}
        if args.baseline:
            with tempfile.TemporaryDirectory(prefix="tp-baseline-") as tmp:
                benv = {**baseline_env(args.baseline, Path(tmp)), **env}
                result["trees"][f"before ({args.baseline})"] = [
                    measure(argv, args.runs, benv, extra)
                    for argv, extra in COMMANDS
                    if argv[0] != "--version" and not extra
                ]
        result["trees"]["this tree"] = [
            measure(argv, args.runs, env, extra) for argv, extra in COMMANDS
        ]
    now = result["trees"]["this tree"][0]
    result["target"] = {
        "command": now["command"],
        "median_wall_s": now["median_wall_s"],
        "peak_rss_mib": now["peak_rss_mib"],
        "met": now["median_wall_s"] <= TARGET_S and now["peak_rss_mib"] <= TARGET_MIB,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    (RESULTS / "cli_startup.md").write_text(markdown(result), "utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
