"""Byte-identity check for ``triggerpath screen`` outputs before and after a change.

Performance work on the reader and engine must not change a single byte of what the quality
team receives, so this runs the shipped command on a set of inputs in every output form (JSON
with a MeasureReport file, CSV, text) and records a SHA-256 per output. ``--save FILE``
records a baseline; ``--check FILE`` re-runs and lists every output whose digest differs.

    .venv/bin/python -m bench.screen_golden --save /tmp/golden.json INPUT...
    .venv/bin/python -m bench.screen_golden --check /tmp/golden.json INPUT...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
AS_OF = "2026-11-21"
VARIANTS: dict[str, list[str]] = {
    "json": ["--format", "json"],
    "csv": ["--format", "csv"],
    "text": ["--format", "text"],
    "json_period_relevant": ["--format", "json", "--period-start", "2020-01-01", "--relevant-only"],
}


def digests(inputs: list[str]) -> dict[str, str]:
    """Run every variant on every input; return {input/variant[/file]: sha256}."""
    out: dict[str, str] = {}
    for item in inputs:
        for name, extra in VARIANTS.items():
            with tempfile.TemporaryDirectory() as tmp:
                report = Path(tmp) / "report.json"
                args = [str(BIN / "triggerpath"), "screen", item, "--as-of", AS_OF, "--quiet",
                        "--workers", "0", *extra]  # fmt: skip
                if name == "json":
                    args += ["--measure-report", str(report)]
                proc = subprocess.run(args, capture_output=True, check=False)
                key = f"{item}/{name}"
                out[key] = hashlib.sha256(proc.stdout).hexdigest() + f" rc={proc.returncode}"
                if report.exists():
                    out[key + "/measure-report"] = hashlib.sha256(report.read_bytes()).hexdigest()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", type=Path)
    mode.add_argument("--check", type=Path)
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args(argv)
    now = digests(args.inputs)
    if args.save:
        args.save.write_text(json.dumps(now, indent=1, sort_keys=True))
        print(f"saved {len(now)} digests to {args.save}")
        return 0
    before = json.loads(args.check.read_text())
    diff = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    for key in diff:
        print(f"DIFFERS {key}: {before.get(key)} -> {now.get(key)}")
    print(f"{len(now) - len(diff)}/{len(now)} outputs byte-identical")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
