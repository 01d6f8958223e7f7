"""Population screening throughput: read + assess every Synthea bundle (not a test).

Run: ``.venv/bin/python -m bench.screen_bench``; writes bench/results/screen.json.
Skips (exit 0) when ../shared/data is absent.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

from triggerpath.adapters.fhir_r4.read import read_bundle
from triggerpath.knowledge import load_knowledge
from triggerpath.services.screening import screen_patient

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "synthea-bundles"
OUT = ROOT / "bench" / "results" / "screen.json"
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def main() -> int:
    files = sorted(SHARED.glob("*.json")) if SHARED.is_dir() else []
    if not files:
        print(f"screen_bench: {SHARED} is absent; nothing to measure (skipped).")
        return 0
    kb = load_knowledge()
    raw = [f.read_bytes() for f in files]
    per: list[float] = []
    start = time.perf_counter()
    for data in raw:
        t = time.perf_counter()
        screen_patient(read_bundle(data, kb, now=NOW), kb)
        per.append((time.perf_counter() - t) * 1000)
    total = time.perf_counter() - start
    per.sort()
    result = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "load_average_at_start": list(os.getloadavg()),
        "patients": len(raw),
        "input_mib": round(sum(map(len, raw)) / 2**20, 1),
        "total_s": round(total, 2),
        "patients_per_s": round(len(raw) / total, 1),
        "per_patient_ms": {
            "p50": round(per[len(per) // 2], 2),
            "p95": round(per[int(len(per) * 0.95)], 2),
            "max": round(per[-1], 2),
        },
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
