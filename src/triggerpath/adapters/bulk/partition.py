"""One streaming pass over the input: every resource to the hash partition of its patient.

Why files in a work directory (and not DuckDB or Parquet): the screen reads each patient's
resources back as the FHIR JSON the adapter already parses, NDJSON lines are copied without
re-encoding, appending to P open files needs no dependency, and any worker that mounts the
work directory can read a partition. Each line is written as ``<patient id>\\t<resource>``
so that a partition is grouped by patient without parsing.

Partition = crc32(patient id) mod P: stable across processes and machines (``hash()`` is
salted per process), so a patient's resources meet in one partition whichever worker wrote
them. Types the screen does not read (Encounter, DocumentReference, Claim …) are counted by
type and not copied; their type is peeked from the line's start when the line begins with
``{"resourceType":`` (Bulk Data servers write it first), otherwise the line is parsed.
Resources with no patient are counted by type; ``Medication`` resources (referenced by
orders, not about a patient) go to a shared file every partition reads.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import fsspec
import orjson

from triggerpath.adapters.bulk.sources import Source
from triggerpath.adapters.fhir_r4.read import READ_TYPES, bundle_resources
from triggerpath.errors import InvalidInput

SHARED_TYPES = frozenset({"Medication"})
_PREFIX = b'{"resourceType":"'
_READ = frozenset(t.encode() for t in READ_TYPES)


@dataclass
class MapStats:
    """What one pass over some sources saw (adds up across map tasks)."""

    files: int = 0
    bundles: int = 0
    not_resources: int = 0  # JSON lines without a resourceType (e.g. an exporter's log)
    resources: Counter[str] = field(default_factory=Counter)  # by type, all of them
    not_read: Counter[str] = field(default_factory=Counter)  # types the screen does not use
    no_patient: Counter[str] = field(default_factory=Counter)
    shared: Counter[str] = field(default_factory=Counter)
    ndjson_types: set[str] = field(default_factory=set)  # types seen in NDJSON (availability)

    def merge(self, other: MapStats) -> None:
        self.files += other.files
        self.bundles += other.bundles
        self.not_resources += other.not_resources
        for mine, theirs in (
            (self.resources, other.resources),
            (self.not_read, other.not_read),
            (self.no_patient, other.no_patient),
            (self.shared, other.shared),
        ):
            mine.update(theirs)
        self.ndjson_types |= other.ndjson_types


def patient_in(reference: str) -> str | None:
    """The patient id of a reference (``Patient/x``, ``urn:uuid:x``, a full URL, or ``x``)."""
    if reference.startswith("urn:uuid:"):
        return reference[9:] or None
    parts = reference.rstrip("/").split("/")
    if len(parts) == 1:
        return parts[0] or None
    return parts[-1] if parts[-2] == "Patient" and parts[-1] else None


_PATIENT_IN: dict[str, str | None] = {}


def _patient_in_cached(reference: str) -> str | None:
    """``patient_in`` memoised: a patient's hundreds of resources repeat one reference."""
    try:
        return _PATIENT_IN[reference]
    except KeyError:
        if len(_PATIENT_IN) > 100_000:
            _PATIENT_IN.clear()
        found = _PATIENT_IN[reference] = patient_in(reference)
        return found


def patient_of(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        pid = resource.get("id")
        return pid if isinstance(pid, str) and pid else None
    for key in ("subject", "patient"):
        ref = resource.get(key)
        ref = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(ref, str) and ref:
            return _patient_in_cached(ref)
    return None


def partition_of(patient_id: str, parts: int) -> int:
    return zlib.crc32(patient_id.encode()) % parts


class _Writer:
    """P partition files (opened on first use) plus the shared file, in one folder."""

    def __init__(self, folder: Path, parts: int) -> None:
        self.folder, self.parts = folder, parts
        folder.mkdir(parents=True, exist_ok=True)
        self.files: dict[int, IO[bytes]] = {}
        # patient id -> (its line prefix, its partition file): a patient's lines come in
        # hundreds, so the encode and hash are done once per patient, not once per line
        self._routes: dict[str, tuple[bytes, IO[bytes]]] = {}

    def _file(self, index: int) -> IO[bytes]:
        fh = self.files.get(index)
        if fh is None:
            name = "shared.ndjson" if index < 0 else f"p{index:05d}.ndjson"
            fh = self.files[index] = (self.folder / name).open("ab", buffering=1 << 20)
        return fh

    def patient(self, pid: str, line: bytes) -> None:
        route = self._routes.get(pid)
        if route is None:
            if len(self._routes) > 100_000:
                self._routes.clear()
            key = pid.encode()
            route = self._routes[pid] = (key + b"\t", self._file(zlib.crc32(key) % self.parts))
        route[1].write(route[0] + line.rstrip(b"\r\n") + b"\n")

    def shared(self, line: bytes) -> None:
        self._file(-1).write(line.rstrip(b"\r\n") + b"\n")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


def _peek_type(line: bytes) -> bytes | None:
    if line.startswith(_PREFIX):
        end = line.find(b'"', len(_PREFIX))
        if end > 0:
            return line[len(_PREFIX) : end]
    return None


def _route(r: dict[str, Any], line: bytes, pid: str | None, out: _Writer, s: MapStats) -> None:
    kind = str(r.get("resourceType"))
    if pid is not None:
        out.patient(pid, line)
    elif kind in SHARED_TYPES:
        s.shared[kind] += 1
        out.shared(line)
    else:
        s.no_patient[kind] += 1


def _ndjson(src: Source, out: _Writer, s: MapStats, tick: Callable[[int], None]) -> None:
    s.files += 1
    n = 0
    with fsspec.open(src.url, "rb", compression="infer") as fh:
        for n, line in enumerate(fh, 1):
            if n % 5000 == 0:
                tick(5000)
            peek = _peek_type(line)
            if peek is not None and peek not in _READ:
                kind = peek.decode("utf-8", "replace")
                s.resources[kind] += 1
                s.not_read[kind] += 1
                s.ndjson_types.add(kind)
                continue
            if not line.strip():
                continue
            r = _parse(line, f"{src.url}:{n}")
            if not isinstance(r.get("resourceType"), str):
                s.not_resources += 1
                continue
            kind = str(r.get("resourceType"))
            s.resources[kind] += 1
            s.ndjson_types.add(kind)
            if kind not in READ_TYPES:
                s.not_read[kind] += 1
                continue
            _route(r, line, patient_of(r), out, s)
    tick(n % 5000)


def _parse(data: bytes, where: str) -> dict[str, Any]:
    try:
        r = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidInput.single(where, "not a JSON resource (NDJSON)") from None
    if not isinstance(r, dict):
        raise InvalidInput.single(where, "not a JSON object (NDJSON holds one resource a line)")
    return r


def _bundle(src: Source, out: _Writer, s: MapStats, tick: Callable[[int], None]) -> None:
    """A Bundle; in a single-patient Bundle, resources without a subject are that patient's."""
    s.files += 1
    s.bundles += 1
    with fsspec.open(src.url, "rb", compression="infer") as fh:
        data = fh.read()
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.single(src.url, f"not valid JSON: {exc}") from None
    del data
    resources = [r for r in bundle_resources(parsed, src.url) if isinstance(r, dict)]
    patients = {patient_of(r) for r in resources if r.get("resourceType") == "Patient"}
    owner = next(iter(patients)) if len(patients) == 1 else None
    for r in resources:
        kind = str(r.get("resourceType"))
        s.resources[kind] += 1
        if kind not in READ_TYPES:
            s.not_read[kind] += 1
            continue
        pid = patient_of(r)
        if pid is None and owner is not None and kind not in SHARED_TYPES:
            pid = owner
        _route(r, orjson.dumps(r), pid, out, s)
    tick(len(resources))


def partition_sources(
    sources: Iterable[Source],
    folder: Path,
    parts: int,
    tick: Callable[[int], None] | None = None,
) -> MapStats:
    """Read ``sources`` once, appending each read resource to its partition under ``folder``."""
    stats = MapStats()
    out = _Writer(folder, parts)
    progress = tick or (lambda n: None)
    try:
        for src in sources:
            (_ndjson if src.kind == "ndjson" else _bundle)(src, out, stats, progress)
    finally:
        out.close()
    return stats


def partition_files(work: Path, index: int) -> Iterator[Path]:
    """The files of partition ``index`` written by every map task under ``work``."""
    for group in sorted(work.glob("g*")):
        path = group / f"p{index:05d}.ndjson"
        if path.is_file():
            yield path


def shared_files(work: Path) -> Iterator[Path]:
    for group in sorted(work.glob("g*")):
        path = group / "shared.ndjson"
        if path.is_file():
            yield path
