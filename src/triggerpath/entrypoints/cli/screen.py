"""``triggerpath screen``: population screening and quality measures over FHIR exports.

The input is streamed once and hash-partitioned by patient (``adapters.bulk``); partitions
are screened in-process, on a local dask cluster (``--workers N``) or on an existing
dask.distributed cluster (``--scheduler``) — see ``entrypoints.screen_runner`` and
docs/screening.md. The output is the same in every mode: patients sorted by id, counts
summed. ``knowledge measures`` lists the measures (``--fhir``: as FHIR R4 Measures).
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import os
import sys
from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from triggerpath.adapters.bulk import MAX_PARTITIONS, expand_inputs
from triggerpath.adapters.fhir_r4.measures import measure_bundle, report_bundle
from triggerpath.entrypoints.cli.app import (
    AsOfOpt,
    Format,
    FormatOpt,
    app,
    emit_json,
    err,
    knowledge_app,
    out,
    parse_date,
    user_errors,
)
from triggerpath.entrypoints.screen_runner import (
    Outcome,
    Plan,
    default_parts,
    default_workers,
    run_screen,
)
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge, load_knowledge
from triggerpath.knowledge.measures import POPULATIONS, MeasureCatalog, load_measures
from triggerpath.services.screening import (
    Period,
    ScreenRow,
    measure_summary,
    merge_tallies,
    summarise,
)

ROW_FIELDS = tuple(f.name for f in fields(ScreenRow))


def measurement_period(as_of: date, start: str | None, end: str | None) -> Period:
    """``--period-start``/``--period-end``; by default the year that ends on the as-of date."""
    last = parse_date(end, "--period-end") if end else as_of
    first = parse_date(start, "--period-start") if start else last - timedelta(days=364)
    if first > last:
        raise InvalidInput.single("--period-start", f"{first} is after --period-end {last}")
    return Period(first, last, as_of)


def _counter(items: dict[str, int]) -> dict[str, int]:
    return dict(sorted((k, v) for k, v in items.items() if v))


def build_report(
    outcome: Outcome, kb: Knowledge, catalog: MeasureCatalog, period: Period, relevant_only: bool
) -> dict[str, Any]:
    """The screen as one JSON-ready document (deterministic: nothing about how it ran)."""
    patients = list(
        heapq.merge(*(r.patients for r in outcome.results), key=lambda p: p["patient_id"])
    )
    if relevant_only:
        patients = [p for p in patients if p["relevant"]]
    summary = summarise(ScreenRow(**{k: p[k] for k in ROW_FIELDS}) for p in patients)
    unknown: dict[str, int] = {}
    for r in outcome.results:
        for kind, n in r.unplaced.items():
            unknown[kind] = unknown.get(kind, 0) + n
    s = outcome.stats
    tallies = merge_tallies(catalog, (r.tallies for r in outcome.results))
    return {
        "as_of": period.as_of.isoformat(),
        "knowledge_version": kb.version,
        "measurement_period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "input": {
            "files": s.files,
            "bundles": s.bundles,
            "resources": sum(s.resources.values()),
            "not_resources": s.not_resources,
            "by_type": _counter(dict(s.resources)),
            "not_read": _counter(dict(s.not_read)),
            "no_patient": _counter(dict(s.no_patient)),
            "unknown_patient": _counter(unknown),
            "shared": _counter(dict(s.shared)),
        },
        "summary": {
            "patients": summary.patients,
            "relevant": summary.relevant,
            "not_assessable": summary.not_assessable,
            "over_course_limit": summary.over_course_limit,
            "verdicts": dict(sorted(summary.verdicts.items())),
            "redirects": dict(sorted(summary.redirects.items())),
            "cautions": dict(sorted(summary.cautions.items())),
            "findings": dict(sorted(summary.findings.items())),
        },
        "measures": measure_summary(catalog, tallies),
        "patients": patients,
    }


def _check_target(path: Path | None) -> None:
    if path is not None and not path.parent.is_dir():
        raise InvalidInput.single("--measure-report", f"folder {path.parent} does not exist")


def _write_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@app.command()
@user_errors
def screen(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Bulk NDJSON files/folders (.ndjson, .ndjson.gz), Bundle files/folders, "
            "a Bulk Data manifest, or fsspec URLs of those (file://, https://, s3:// …)",
            show_default=False,
        ),
    ],
    format: Annotated[str, typer.Option("--format", "-f", help="text, json or csv")] = "text",
    as_of: AsOfOpt = None,
    period_start: Annotated[
        str | None, typer.Option("--period-start", help="measurement period start YYYY-MM-DD")
    ] = None,
    period_end: Annotated[
        str | None, typer.Option("--period-end", help="measurement period end (default: as-of)")
    ] = None,
    relevant_only: Annotated[
        bool, typer.Option(help="only patients with back/neck pain or TPIs on record")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="local worker processes (0: in-process; default: all cores for inputs "
            "over 64 MB, in-process below)",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="dask.distributed scheduler, e.g. tcp://host:8786"),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option("--partitions", help="hash partitions, 1 to 1024 (default: 32 MB each)"),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            "--work-dir", help="where partitions are spilled (shared storage on a cluster)"
        ),
    ] = None,
    measure_report: Annotated[
        Path | None,
        typer.Option("--measure-report", help="write Measures + summary MeasureReports (FHIR R4)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Screen a population's FHIR records: verdicts, coded red flags and redirects,
    bleeding-risk cautions, TPIs beyond the course limit (S000.20), and quality measures."""
    if format not in ("text", "json", "csv"):
        raise InvalidInput.single("--format", f"{format!r}: use text, json or csv")
    if partitions is not None and not 1 <= partitions <= MAX_PARTITIONS:
        raise InvalidInput.single("--partitions", f"must be from 1 to {MAX_PARTITIONS}")
    if work_dir is not None and not work_dir.is_dir():
        raise InvalidInput.single("--work-dir", f"{work_dir} is not a folder")
    _check_target(measure_report)
    kb, catalog = load_knowledge(), load_measures()
    day = parse_date(as_of)
    period = measurement_period(day, period_start, period_end)
    sources = expand_inputs(paths)
    n = default_workers(sources, workers, scheduler)
    total = sum(s.size or 0 for s in sources)
    plan = Plan(
        sources=sources,
        parts=partitions or default_parts(total, n, scheduler is not None or n > 0),
        workers=n,
        scheduler=scheduler,
        now=datetime.combine(day, time(23, 59, 59), tzinfo=UTC),
        period=period,
        work_parent=str(work_dir) if work_dir else None,
    )
    report = build_report(
        run_screen(plan, quiet=quiet, console=err), kb, catalog, period, relevant_only
    )
    if measure_report is not None:
        counts = {m.id: _counts(m.id, report) for m in catalog.measures}
        _write_atomic(
            measure_report, report_bundle(catalog, kb, counts, (period.start, period.end), day)
        )
    if format == "json":
        emit_json(report)
    elif format == "csv":
        sys.stdout.write(measure_csv(report["patients"]))
    else:
        _text(report)


def _counts(measure_id: str, report: dict[str, Any]) -> dict[str, int]:
    m = next(x for x in report["measures"] if x["id"] == measure_id)
    return {
        "initial_population": m["initial_population"],
        "denominator": m["denominator"],
        "denominator_exclusion": m["exclusions"],
        "numerator": m["numerator"],
    }


def measure_csv(patients: list[dict[str, Any]]) -> str:
    """One row per patient per measure whose initial population they are in, with the
    resources that put them in each population (space-separated references)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["patient_id", "measure_id", *POPULATIONS, *(f"{p}_evidence" for p in POPULATIONS)])
    for p in patients:
        for m in p["measures"]:
            ev = m["evidence"]
            w.writerow(
                [
                    p["patient_id"],
                    m["id"],
                    *(int(pop in ev) for pop in POPULATIONS),
                    *(" ".join(ev.get(pop, [])) for pop in POPULATIONS),
                ]
            )
    return buf.getvalue()


def _text(report: dict[str, Any]) -> None:
    patients = report["patients"]
    t = Table(
        title=f"Population screen as of {report['as_of']} ({len(patients)} patients, "
        f"knowledge {report['knowledge_version']})"
    )
    for col in (
        "patient",
        "age",
        "regions",
        "verdict",
        "redirect",
        "coded findings",
        "cautions",
        "TPIs",
    ):
        t.add_column(col)
    for r in patients:
        if not r["relevant"] and not r["findings"]:
            continue
        tpis = f"{r['tpis_on_record']}{' OVER LIMIT' if r['tpis_over_course_limit'] else ''}"
        t.add_row(
            r["patient_id"][:12],
            str(r["age_years"] or ""),
            ", ".join(r["regions"]),
            r["verdict"] or "not assessable",
            r["redirect"] or "",
            ", ".join(r["findings"]),
            ", ".join(r["cautions"]),
            tpis,
        )
    out.print(t)
    period = report["measurement_period"]
    m = Table(title=f"Quality measures, {period['start']} to {period['end']}")
    for col in (
        "measure",
        "numerator",
        "denominator",
        "exclusions",
        "rate",
        "better",
        "statements",
    ):
        m.add_column(col)
    for x in report["measures"]:
        rate = "" if x["rate"] is None else f"{x['rate']:.1%}"
        m.add_row(
            x["title"],
            str(x["numerator"]),
            str(x["denominator"]),
            str(x["exclusions"]),
            rate,
            x["improvement"],
            " ".join(x["statement_ids"]),
        )
    out.print(m)
    s, i = report["summary"], report["input"]
    out.print(
        f"{s['patients']} patients, {s['relevant']} with back/neck pain or TPIs; "
        f"verdicts {s['verdicts']}; cautions {s['cautions']}; "
        f"{s['over_course_limit']} over the course limit [S000.20]; "
        f"{s['not_assessable']} not assessable. {i['resources']} resources read; "
        f"no patient {i['no_patient']}; unknown patient {i['unknown_patient']}."
    )


@knowledge_app.command("measures")
@user_errors
def knowledge_measures(
    format: FormatOpt = Format.text,
    fhir: Annotated[
        bool, typer.Option("--fhir", help="as FHIR R4 Measure resources (Bundle)")
    ] = False,
) -> None:
    """The quality measures `screen` reports: populations, statements, direction."""
    kb, catalog = load_knowledge(), load_measures()
    if fhir:
        emit_json(measure_bundle(catalog, kb))
        return
    if format == Format.json:
        emit_json(catalog.model_dump(mode="json"))
        return
    t = Table(title=f"Quality measures (knowledge {kb.version})")
    for col in ("id", "title", "numerator", "better", "statements"):
        t.add_column(col)
    for m in catalog.measures:
        t.add_row(
            m.id,
            m.title,
            m.populations.numerator.describe(),
            m.improvement,
            " ".join(m.statement_ids),
        )
    out.print(t)
