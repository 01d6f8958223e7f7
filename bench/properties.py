"""The long run of the issue 12 §7 property harness (not a test; the suite runs a batch).

Run (about 10-30 minutes on 2 cores)::

    .venv/bin/python -m bench.properties                 # 100,000 domain cases + CLI sample
    .venv/bin/python -m bench.properties --scale 0.01    # a quick look (1,000 cases)

Draws generated assessments, plans and dose requests (schema-derived and structured,
:mod:`tests.property_harness`) and runs each through the real domain functions, and a
sample of them through the real CLI (``triggerpath assess`` / ``dose`` in-process via
Typer's runner). Every property failure is recorded with its input; per-call times are
kept (the bound asserted here: no call over ``--max-call-s``). Writes
``bench/results/properties.json`` and ``.md`` with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tests import property_harness as h
from typer.testing import CliRunner

from triggerpath.entrypoints.cli import app

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
#: kind -> (strategy, check, share of the cases)
#: kind -> how to vary one generated case cheaply (the long run checks ``--variants`` each)
VARIANTS: dict[str, Callable[[Any, Random], Any]] = {
    "assessment.structured": h.assessment_variant,
    "plan.structured": h.plan_variant,
    "dose": h.dose_variant,
}
PLAN: dict[str, tuple[Callable[[], st.SearchStrategy[Any]], Callable[[Any], str], float]] = {
    "assessment.structured": (h.assessment_cases, h.check_assessment, 0.32),
    "assessment.schema": (h.schema_assessments, h.check_assessment, 0.08),
    "plan.structured": (h.plan_cases, h.check_plan, 0.25),
    "plan.schema": (h.schema_plans, h.check_plan, 0.05),
    "dose": (h.dose_cases, h.check_dose_case, 0.30),
}


@dataclass
class Tally:
    """Counts, outcomes, times and failures of one kind of case."""

    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    times: list[float] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The figures of this kind, times in milliseconds."""
        t = sorted(self.times) or [0.0]
        return {
            "cases": self.cases,
            "outcomes": dict(self.outcomes.most_common()),
            "failures": len(self.failures),
            "ms_per_call": {
                "p50": round(t[len(t) // 2] * 1000, 3),
                "p99": round(t[int(len(t) * 0.99)] * 1000, 3),
                "max": round(t[-1] * 1000, 3),
            },
        }


def machine() -> dict[str, Any]:
    """Where the run happened."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


def run_kind(
    name: str,
    count: int,
    deadline: float,
    cli_every: int,
    runner: CliRunner,
    tmp: Path,
    tally: Tally,
    variants: int,
) -> None:
    """Run ``count`` more cases of one kind into ``tally`` (stops at ``deadline``).

    Each case Hypothesis draws is checked, then ``variants`` cheap random variants of it
    (generation is most of the cost; the variants keep the properties' inputs varied).
    """
    strategy, check, _ = PLAN[name]
    count += tally.cases

    draws = count if name not in VARIANTS else max(1, (count - tally.cases) // (variants + 1) + 1)

    @settings(
        max_examples=draws,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy(), st.randoms(use_true_random=False))
    def one(first: Any, rng: Random) -> None:
        vary = VARIANTS.get(name)
        cases = [first] + ([vary(first, rng) for _ in range(variants)] if vary else [])
        for data in cases:
            check_one(data)

    def check_one(data: Any) -> None:
        if time.monotonic() > deadline or tally.cases >= count:
            return
        tally.cases += 1
        try:
            outcome, seconds = h.timed(check, data)
        except Exception as exc:  # a property failed or something raised: record it
            tally.failures.append(
                {
                    "error": repr(exc)[:300],
                    "trace": traceback.format_exc()[-1500:],
                    "input": json.dumps(data, default=str)[:3000],
                }
            )
            return
        tally.outcomes[outcome] += 1
        tally.times.append(seconds)
        if cli_every and tally.cases % cli_every == 0:
            cli_case(name, data, runner, tmp, tally)

    one()


def cli_case(name: str, data: Any, runner: CliRunner, tmp: Path, tally: Tally) -> None:
    """The same input through the real CLI: exit 0 or 2, never a traceback."""
    command = "plan" if name.startswith("plan") else "assess"
    if name == "dose":
        return
    f = tmp / "case.json"
    f.write_text(json.dumps(data, default=str), encoding="utf-8")
    start = time.perf_counter()
    res = runner.invoke(app, [command, str(f), "--format", "json", "--as-of", "2026-11-21"])
    tally.outcomes[f"cli.exit_{res.exit_code}"] += 1
    tally.times.append(time.perf_counter() - start)
    if res.exit_code not in (0, 2):
        tally.failures.append({"error": f"cli exit {res.exit_code}", "input": str(data)[:3000]})


HOSTILE_DOSE_ARGS = [
    ["--injectate", "lidocaine:1:1e-999999999"],
    ["--injectate", "lidocaine:1e999999999:1"],
    ["--injectate", "lidocaine:1:0.0000001"],
    ["--injectate", "lidocaine:1:1"] * 25,
    ["--injectate", "a" * 500 + ":1:1"],
    ["--injectate", "lidocaine:" + "9" * 5000 + ":1"],
    ["--injectate", "bupivacaine:0.25:20", "--prior-24h", "lidocaine:250"],
]


def cli_dose(runner: CliRunner) -> Tally:
    """The dose command on the hostile flags of the issue and their variants."""
    tally = Tally()
    for args in HOSTILE_DOSE_ARGS:
        start = time.perf_counter()
        res = runner.invoke(app, ["dose", "--weight-kg", "70", *args])
        tally.times.append(time.perf_counter() - start)
        tally.cases += 1
        tally.outcomes[f"exit_{res.exit_code}"] += 1
        if res.exit_code not in (0, 2) or "Traceback" in res.output:
            tally.failures.append({"error": f"exit {res.exit_code}", "input": " ".join(args)[:300]})
    return tally


def write(result: dict[str, Any]) -> None:
    """bench/results/properties.json and a short markdown table."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "properties.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    m = result["machine"]
    lines = [
        "# Property harness, long run (issue 12 §7)",
        "",
        f"Run {result['run_at']} on {m['cpu_count']} CPUs ({m['cpu_model']}), Python "
        f"{m['python']}; load average at start {m['load_average_at_start']}.",
        f"Command: `{result['command']}`. Total {result['total_cases']:,} domain cases "
        f"(planned {result['planned_cases']:,}"
        + ("; stopped by the time bound" if result["stopped_by_time"] else "")
        + f") in "
        f"{result['wall_s']} s; {result['total_failures']} property failures; slowest call "
        f"{result['max_call_ms']} ms (bound {result['max_call_s'] * 1000:.0f} ms): "
        f"**{'PASS' if result['passed'] else 'FAIL'}**.",
        "",
        "| kind | cases | failures | p50 ms | p99 ms | max ms | outcomes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for kind, s in result["kinds"].items():
        t = s["ms_per_call"]
        outcomes = ", ".join(f"{k} {v}" for k, v in s["outcomes"].items())
        lines.append(
            f"| {kind} | {s['cases']:,} | {s['failures']} | {t['p50']} | {t['p99']} | "
            f"{t['max']} | {outcomes} |"
        )
    (OUT / "properties.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=2400, help="stop drawing after this")
    parser.add_argument("--cli-every", type=int, default=100, help="1 in N through the CLI")
    parser.add_argument("--max-call-s", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--variants", type=int, default=8, help="cheap variants per draw")
    args = parser.parse_args()
    total = int(args.cases * args.scale)
    start = time.monotonic()
    deadline = start + args.seconds
    runner = CliRunner()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"tp-properties-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    info = machine()
    kinds: dict[str, Tally] = {name: Tally() for name in PLAN}
    # rounds: every kind advances together, so a time bound never starves a kind
    for r in range(args.rounds):
        for name, (_, _, share) in PLAN.items():
            count = int(total * share) // args.rounds
            run_kind(name, count, deadline, args.cli_every, runner, tmp, kinds[name], args.variants)
        print(f"round {r + 1}/{args.rounds}", {n: t.cases for n, t in kinds.items()}, flush=True)
    kinds["cli.dose_hostile"] = cli_dose(runner)
    wall = time.monotonic() - start
    max_call = max((max(t.times) for t in kinds.values() if t.times), default=0.0)
    failures = sum(len(t.failures) for t in kinds.values())
    domain_cases = sum(t.cases for n, t in kinds.items() if not n.startswith("cli."))
    result = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.properties "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "machine": info,
        "total_cases": domain_cases,
        "planned_cases": total,
        "stopped_by_time": domain_cases < total,
        "wall_s": round(wall, 1),
        "max_call_s": args.max_call_s,
        "max_call_ms": round(max_call * 1000, 1),
        "total_failures": failures,
        "passed": failures == 0 and max_call <= args.max_call_s,
        "kinds": {n: t.summary() for n, t in kinds.items()},
        "failure_examples": [f for t in kinds.values() for f in t.failures][:10],
    }
    write(result)
    print(json.dumps({k: v for k, v in result.items() if k != "kinds"}, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
