"""``triggerpath screen``: population screening of FHIR records for quality teams."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from triggerpath.adapters.fhir_r4.read import (
    PatientSnapshot,
    bulk_patient_ids,
    read_bulk_ndjson,
    read_bundle,
)
from triggerpath.entrypoints.cli.app import (
    AsOfOpt,
    Format,
    app,
    emit_json,
    out,
    parse_date,
    user_errors,
)
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge, load_knowledge
from triggerpath.services.screening import ScreenRow, screen_patient, summarise


def _snapshots(paths: list[Path], kb: Knowledge, now: datetime) -> Iterator[PatientSnapshot]:
    """Bundles (files, or folders of *.json) and Bulk Data folders (*.ndjson)."""
    for path in paths:
        if path.is_dir() and any(path.glob("*.ndjson")):
            for pid in bulk_patient_ids(path):
                yield read_bulk_ndjson(path, pid, kb, now=now)
        elif path.is_dir():
            for f in sorted(path.glob("*.json")):
                yield _bundle(f, kb, now)
        elif path.is_file():
            yield _bundle(path, kb, now)
        else:
            raise InvalidInput.single("PATH", f"{path} does not exist")


def _bundle(path: Path, kb: Knowledge, now: datetime) -> PatientSnapshot:
    try:
        return read_bundle(path.read_bytes(), kb, now=now)
    except InvalidInput as exc:
        raise InvalidInput.single(str(path), "; ".join(str(p) for p in exc.problems)) from None


@app.command()
@user_errors
def screen(
    paths: Annotated[
        list[Path], typer.Argument(help="FHIR Bundle files, folders of bundles, or Bulk NDJSON")
    ],
    format: Annotated[
        str, typer.Option("--format", "-f", help="text, json or csv")
    ] = Format.text.value,
    as_of: AsOfOpt = None,
    relevant_only: Annotated[
        bool, typer.Option(help="only patients with back/neck pain or TPIs on record")
    ] = False,
) -> None:
    """Screen a population's FHIR records: verdicts, coded red flags and redirects,
    bleeding-risk cautions, TPIs beyond the course limit (S000.20), missing findings."""
    if format not in ("text", "json", "csv"):
        raise InvalidInput.single("--format", f"{format!r}: use text, json or csv")
    kb = load_knowledge()
    day = parse_date(as_of)
    now = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    rows = [screen_patient(s, kb) for s in _snapshots(paths, kb, now)]
    if relevant_only:
        rows = [r for r in rows if r.relevant]
    summary = summarise(rows)
    if format == "json":
        emit_json(
            {
                "as_of": day.isoformat(),
                "knowledge_version": kb.version,
                "summary": {
                    "patients": summary.patients,
                    "relevant": summary.relevant,
                    "not_assessable": summary.not_assessable,
                    "over_course_limit": summary.over_course_limit,
                    "verdicts": dict(summary.verdicts),
                    "redirects": dict(summary.redirects),
                    "cautions": dict(summary.cautions),
                    "findings": dict(summary.findings),
                },
                "patients": [asdict(r) for r in rows],
            }
        )
        return
    if format == "csv":
        _csv(rows)
        return
    t = Table(title=f"Population screen as of {day} ({len(rows)} patients, knowledge {kb.version})")
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
    for r in rows:
        if not r.relevant and not r.findings:
            continue
        tpis = f"{r.tpis_on_record}{' OVER LIMIT' if r.tpis_over_course_limit else ''}"
        t.add_row(
            r.patient_id[:12],
            str(r.age_years or ""),
            ", ".join(r.regions),
            r.verdict or "not assessable",
            r.redirect or "",
            ", ".join(r.findings),
            ", ".join(r.cautions),
            tpis,
        )
    out.print(t)
    out.print(
        f"{summary.patients} patients, {summary.relevant} with back/neck pain or TPIs; "
        f"verdicts {dict(summary.verdicts)}; cautions {dict(summary.cautions)}; "
        f"{summary.over_course_limit} over the course limit [S000.20]; "
        f"{summary.not_assessable} not assessable."
    )


def _csv(rows: list[ScreenRow]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "patient_id",
            "age_years",
            "sex",
            "regions",
            "relevant",
            "verdict",
            "redirect",
            "findings",
            "cautions",
            "tpis_on_record",
            "tpis_over_course_limit",
            "needs",
            "problems",
            "statement_ids",
        ]
    )
    for r in rows:
        w.writerow(
            [
                r.patient_id,
                r.age_years,
                r.sex,
                " ".join(r.regions),
                r.relevant,
                r.verdict,
                r.redirect,
                " ".join(r.findings),
                " ".join(r.cautions),
                r.tpis_on_record,
                r.tpis_over_course_limit,
                r.needs,
                " | ".join(r.problems),
                " ".join(r.statement_ids),
            ]
        )
    sys.stdout.write(buf.getvalue())
