"""Population screening at scale: partitioning, measures, formats, and the same answer
in-process, on a LocalCluster and on a real dask.distributed cluster.

The populations are generated (bench/screen_data.py): each patient follows a scenario whose
measure populations are known by design, so expected counts come from the design, not from
a previous run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from bench.screen_bench import scheduler_address
from bench.screen_data import (
    AS_OF,
    SCENARIOS,
    expected_counts,
    replicate,
    scenario_of,
    write_population,
)
from typer.testing import CliRunner

from triggerpath.adapters.bulk.partition import partition_of, patient_in
from triggerpath.entrypoints.cli import app
from triggerpath.errors import KnowledgeError
from triggerpath.knowledge.measures import MeasureCatalog, load_measures

from .conftest import SHARED
from .fhir_schema import assert_valid

runner = CliRunner()
COUNT = 18  # three patients per scenario
ARGS = ["--as-of", AS_OF.isoformat(), "--quiet"]
VENV_BIN = Path(sys.executable).parent


def screen(*args: str) -> dict[str, Any]:
    res = runner.invoke(app, ["screen", *args, "--format", "json", *ARGS])
    assert res.exit_code == 0, res.output
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def counts(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    keys = {"exclusions": "denominator_exclusion"}
    out = {}
    for m in report["measures"]:
        pops = ("initial_population", "denominator", "exclusions", "numerator")
        out[m["id"]] = {keys.get(p, p): m[p] for p in pops if m[p]}
    return {k: v for k, v in out.items() if v}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_population(tmp_path_factory.mktemp("export"), COUNT)


def test_measures_match_the_designed_populations(export: Path) -> None:
    report = screen(str(export))
    assert counts(report) == expected_counts(COUNT)
    assert len(report["measures"]) >= 3
    for m in report["measures"]:
        assert m["statement_ids"] and {"id", "numerator", "denominator", "rate"} <= m.keys()
    reassess = next(m for m in report["measures"] if m["id"] == "tpi-reassessment")
    # 3 reassessed of 12 TPI patients minus 3 whose 4-week window is still open
    assert reassess["rate"] == round(3 / 9, 4)
    ids = [p["patient_id"] for p in report["patients"]]
    assert ids == sorted(ids) and len(ids) == COUNT


def test_nothing_is_dropped_silently(export: Path) -> None:
    inp = screen(str(export))["input"]
    assert inp["unknown_patient"] == {"Condition": 1}  # about a patient not in the export
    assert inp["no_patient"] == {"Observation": 1}
    assert inp["shared"] == {"Medication": 1}
    assert inp["not_read"] == {"Organization": 1}
    assert inp["not_resources"] == 1  # the exporter's log line
    lines = sum(len(p.read_text().splitlines()) for p in export.glob("*.ndjson"))
    assert inp["resources"] + inp["not_resources"] == lines


def test_patient_rows_trace_to_resources(export: Path) -> None:
    ids: dict[str, set[str]] = defaultdict(set)
    for path in export.glob("*.ndjson"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if "resourceType" in r:
                pid = r["id"] if r["resourceType"] == "Patient" else None
                ref = (r.get("subject") or {}).get("reference", "")
                ids[pid or ref.removeprefix("Patient/")].add(f"{r['resourceType']}/{r['id']}")
    res = runner.invoke(app, ["screen", str(export), "--format", "csv", *ARGS])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == sum(len(SCENARIOS[scenario_of(n)][1]) for n in range(COUNT))
    for row in rows:
        evidence = row["initial_population_evidence"].split()
        assert evidence and set(evidence) <= ids[row["patient_id"]]
        if row["numerator"] == "1":
            assert set(row["numerator_evidence"].split()) <= ids[row["patient_id"]]


def test_forms_give_the_same_measures(export: Path, tmp_path: Path) -> None:
    base = screen(str(export))
    gz = screen(str(write_population(tmp_path / "gz", COUNT, "gz")))
    bundles = screen(str(write_population(tmp_path / "bundles", COUNT, "bundles")))
    url = screen(export.resolve().as_uri())  # an fsspec URL
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "transactionTime": "2026-11-21T00:00:00Z",
                "request": "https://ehr.example/fhir/$export",
                "requiresAccessToken": False,
                "output": [
                    {"type": p.name.split(".")[0], "url": str(p)}
                    for p in sorted(export.glob("*.ndjson"))
                ],
                "error": [],
            }
        )
    )
    via_manifest = screen(str(manifest))
    assert gz == base and url == base and via_manifest == base
    assert bundles["measures"] == base["measures"]
    membership = [(p["patient_id"], p["measures"]) for p in base["patients"]]
    assert [(p["patient_id"], p["measures"]) for p in bundles["patients"]] == membership


def test_partitions_do_not_change_the_answer(export: Path) -> None:
    one = runner.invoke(app, ["screen", str(export), "-f", "json", "--partitions", "1", *ARGS])
    many = runner.invoke(app, ["screen", str(export), "-f", "json", "--partitions", "7", *ARGS])
    assert one.exit_code == many.exit_code == 0
    assert one.stdout == many.stdout


def _line(resource: dict[str, Any]) -> str:
    return json.dumps(resource, separators=(",", ":")) + "\n"


def test_references_with_control_characters_harm_no_other_patient(
    export: Path, tmp_path: Path
) -> None:
    """The partition files are ``<patient id>\\t<resource>`` lines, and a reference is free
    text: a tab or newline in it must not break a line, nor put a resource with another
    patient. Such ids are written JSON-encoded, so each reaches the screen exactly as it is."""
    base = screen(str(export), "--partitions", "3")
    dirty = tmp_path / "dirty"
    shutil.copytree(export, dirty)
    patients = [json.loads(x) for x in (export / "Patient.000.ndjson").read_text().splitlines()]
    first = patients[0]["id"]
    own: list[dict[str, Any]] = []  # the first patient's resources, Patient first
    for path in sorted(export.glob("*.ndjson")):
        for x in path.read_text().splitlines():
            r = json.loads(x)
            ref = (r.get("subject") or r.get("patient") or {}).get("reference")
            if r.get("id") == first or ref == f"Patient/{first}":
                own.append(r)
    condition = next(r for r in own if r["resourceType"] == "Condition")
    stray = [  # about no patient in the export; the last one has a code no value set holds
        {**condition, "id": f"stray-{n}", "subject": {"reference": f"Patient/{ref}"}}
        for n, ref in enumerate([f"{first}\t", f"{first}\n", "ghost\x00x", f"{first}\r"])
    ]
    stray[-1]["code"] = {
        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z99.99"}]
    }
    twins = ["twin\tof first", '"quoted']  # non-conformant ids, copies of the first patient
    added = list(stray)
    for twin in twins:
        for r in own:
            if r["resourceType"] == "Patient":
                added.append({**r, "id": twin})
            else:
                key = "subject" if "subject" in r else "patient"
                added.append({**r, key: {"reference": f"Patient/{twin}"}})
    with (dirty / "Condition.000.ndjson").open("a") as fh:  # one file holds every type
        fh.writelines(_line(r) for r in added)
    reports = [screen(str(dirty), "--partitions", p) for p in ("1", "7")]
    assert reports[0] == reports[1]
    report = reports[0]
    rows = {p["patient_id"]: p for p in report["patients"]}
    assert [p for p in report["patients"] if p["patient_id"] not in twins] == base["patients"]
    for twin in twins:
        assert rows[twin] == {**rows[first], "patient_id": twin}
    inp, was = report["input"], base["input"]
    assert inp["resources"] == was["resources"] + len(added)
    assert inp["unknown_patient"] == {"Condition": was["unknown_patient"]["Condition"] + 4}
    assert inp["no_patient"] == was["no_patient"]
    assert report["summary"]["patients"] == base["summary"]["patients"] + 2


def test_measurement_period_and_as_of_are_honoured(export: Path) -> None:
    # from 50 days before the as-of date: only the TPIs 30 ("series") and 10 ("recent") days ago
    start = AS_OF.fromordinal(AS_OF.toordinal() - 50).isoformat()
    report = screen(str(export), "--period-start", start)
    stepped = next(m for m in report["measures"] if m["id"] == "tpi-stepped-care")
    assert stepped["initial_population"] == 6
    assert report["measurement_period"] == {"start": start, "end": AS_OF.isoformat()}
    # as of a year earlier nothing had happened yet: no TPI on record, no candidate's NSAID
    res = runner.invoke(app, ["screen", str(export), "-f", "json", "-q", "--as-of", "2025-11-21"])
    early = json.loads(res.stdout)
    assert all(m["numerator"] == 0 for m in early["measures"])


def test_measure_report_and_measures_are_valid_fhir(export: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    res = runner.invoke(app, ["screen", str(export), "--measure-report", str(target), *ARGS])
    assert res.exit_code == 0, res.output
    bundle = json.loads(target.read_text())
    assert_valid(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    n = len(load_measures().measures)
    assert kinds.count("Measure") == kinds.count("MeasureReport") == n
    report = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["id"].startswith("tpi-reassessment-")
    )
    assert report["type"] == "summary" and report["period"]["end"] == AS_OF.isoformat()
    pops = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    assert pops == {
        "initial-population": 12,
        "denominator": 12,
        "denominator-exclusion": 3,
        "numerator": 3,
    }
    res = runner.invoke(app, ["knowledge", "measures", "--fhir"])
    assert res.exit_code == 0
    measures = json.loads(res.stdout)
    assert_valid(measures)
    for e in measures["entry"]:
        assert_valid(e["resource"])
        assert e["resource"]["relatedArtifact"]  # the statements behind it


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--period-start", "2026-13-01"], "--period-start"),
        (["--period-start", "2026-11-01", "--period-end", "2026-10-01"], "--period-start"),
        (["--workers", "-1"], "--workers"),
        (["--partitions", "0"], "--partitions"),
        (["--partitions", "1025"], "--partitions"),  # beyond the write-buffer budget's P
        (["--measure-report", "/nonexistent/dir/r.json"], "--measure-report"),
        (["--format", "xml"], "--format"),
    ],
)
def test_bad_options_name_the_field(export: Path, args: list[str], field: str) -> None:
    res = runner.invoke(app, ["screen", str(export), *args, *ARGS])
    assert res.exit_code == 2 and field in res.stderr, res.output


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    res = runner.invoke(app, ["screen", str(tmp_path / "absent"), *ARGS])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    bad = tmp_path / "Condition.000.ndjson"
    bad.write_text('{"resourceType": "Condition"}\nnot json\n')
    res = runner.invoke(app, ["screen", str(bad), *ARGS])
    assert res.exit_code == 2 and "Condition.000.ndjson:2" in res.stderr
    other = tmp_path / "x.json"
    other.write_text('{"hello": 1}')
    res = runner.invoke(app, ["screen", str(other), *ARGS])
    assert res.exit_code == 2 and "manifest" in res.stderr


def test_partitioning_is_stable_and_references_resolve() -> None:
    assert partition_of("abc", 16) == partition_of("abc", 16) == 0x352441C2 % 16
    assert patient_in("Patient/p1") == patient_in("urn:uuid:p1") == "p1"
    assert patient_in("https://ehr.example/fhir/Patient/p1") == "p1"
    assert patient_in("Group/g1") is None


def test_unknown_facts_fail_to_load() -> None:
    data = load_measures().model_dump()
    data["measures"][0]["populations"]["numerator"]["all"] = ["conservative_care_befor_tpi"]
    with pytest.raises(ValueError, match="conservative_care_befor_tpi"):
        MeasureCatalog.model_validate(data)
    assert not isinstance(load_measures(), KnowledgeError)


def test_local_workers_give_the_same_bytes(export: Path) -> None:
    here = runner.invoke(app, ["screen", str(export), "-f", "json", *ARGS])
    local = runner.invoke(app, ["screen", str(export), "-f", "json", "--workers", "2", *ARGS])
    assert here.exit_code == local.exit_code == 0, local.output
    assert local.stdout == here.stdout


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def test_real_dask_cluster_gives_the_same_bytes(export: Path, tmp_path: Path) -> None:
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1, random ports."""
    dask = VENV_BIN / "dask"
    if not dask.exists():
        dask = Path(shutil.which("dask") or "dask")
    sched_file = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    procs = [
        _start(
            [
                str(dask),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--scheduler-file",
                str(sched_file),
                *common,
            ],
            tmp_path / "scheduler.log",
        )
    ]
    try:
        address = scheduler_address(sched_file)  # waits until the file is written whole
        for i in range(2):
            procs.append(
                _start(
                    [
                        str(dask),
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                    ],
                    tmp_path / f"worker{i}.log",
                )
            )
        from distributed import Client

        with Client(address, timeout="30s") as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(2, timeout=90)
            assert len(client.scheduler_info()["workers"]) == 2
        here = runner.invoke(app, ["screen", str(export), "-f", "json", *ARGS])
        remote = runner.invoke(
            app,
            [
                "screen",
                str(export),
                "-f",
                "json",
                "--scheduler",
                address,
                "--work-dir",
                str(tmp_path),
                *ARGS,
            ],
        )
        assert remote.exit_code == 0, remote.output
        assert remote.stdout == here.stdout
    finally:
        for p in reversed(procs):
            os.killpg(p.pid, 15)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait(timeout=10)


@pytest.mark.shared_data
def test_replicated_synthea_export_scales_exactly(tmp_path: Path) -> None:
    src = SHARED / "data" / "synthea-bulk-10"
    one = screen(str(src))
    two = screen(str(replicate(src, tmp_path / "x2", 2)))
    assert two["summary"]["patients"] == 2 * one["summary"]["patients"]
    assert two["input"]["resources"] == 2 * one["input"]["resources"]
    for a, b in zip(one["measures"], two["measures"], strict=True):
        assert b["denominator"] == 2 * a["denominator"] and b["numerator"] == 2 * a["numerator"]
    for key, n in one["summary"]["verdicts"].items():
        assert two["summary"]["verdicts"][key] == 2 * n


def _bar_output(quiet: bool, seconds: float) -> str:
    from rich.console import Console

    from triggerpath.entrypoints.screen_runner import ScreenProgress

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with ScreenProgress(quiet, 4, console) as progress:
        progress.resources(5000)
        time.sleep(seconds)
    return buf.getvalue()


def test_progress_bar_only_for_runs_over_a_second_and_never_when_quiet() -> None:
    assert _bar_output(quiet=False, seconds=0) == ""  # a short run prints nothing
    shown = _bar_output(quiet=False, seconds=1.5)
    assert "resources read" in shown and "partitions done" in shown
    assert "patients screened" in shown
    assert _bar_output(quiet=True, seconds=1.5) == ""
