"""One streaming pass over the input: every resource to the hash partition of its patient.

Why files in a work directory (and not DuckDB or Parquet): the screen reads each patient's
resources back as the FHIR JSON the adapter already parses, NDJSON lines are copied without
re-encoding, appending to P open files needs no dependency, and any worker that mounts the
work directory can read a partition. Each line is written as ``<patient id>\\t<resource>``
so that a partition is grouped by patient without parsing; resources the FHIR reader would
drop on their codes (``adapters.bulk.codes``) are only counted: ``<patient id>\\t!<type>\\t<n>``.
A patient id is written as it is unless it holds a control character (a tab or newline in a
reference would break the line and could put a resource with another patient) or starts with
``"``: then it is written as a JSON string (``spill_key``), so every id round-trips exactly.

Partition = crc32(patient id) mod P: stable across processes and machines (``hash()`` is
salted per process), so a patient's resources meet in one partition whichever worker wrote
them. Types the screen does not read (Encounter, DocumentReference, Claim …) are counted by
type and not copied; their type is peeked from the line's start when the line begins with
``{"resourceType":`` (Bulk Data servers write it first), otherwise the line is parsed.
Resources with no patient are counted by type; ``Medication`` resources (referenced by
orders, not about a patient) go to a shared file every partition reads.
"""

from __future__ import annotations

import io
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import fsspec
import fsspec.utils
import orjson

from triggerpath.adapters.bulk.codes import CodeFilter
from triggerpath.adapters.bulk.sources import Source
from triggerpath.adapters.fhir_r4.read import READ_TYPES, bundle_resources
from triggerpath.errors import InvalidInput

SHARED_TYPES = frozenset({"Medication"})
READ_BUFFER = 1 << 20
#: Most hash partitions a screen uses: each map task keeps P + 1 files open for appending.
MAX_PARTITIONS = 1024
WRITE_BUFFER = 1 << 20  # an open partition file's write buffer, at most
WRITE_BUDGET = 64 << 20  # all of one map task's write buffers together, at MAX_PARTITIONS
_READ_BYTES = frozenset(t.encode() for t in READ_TYPES)
PREFIX = b'{"resourceType":"'  # how Bulk Data servers start a line
_BY_ID = frozenset({"Patient", *SHARED_TYPES})  # placed by their id, or shared
SKIPPED = b"!"  # partition line ``<pid>\t!<type>\t<n>``: n resources the reader would drop
_DROPPED_HELD = 100_000  # (patient, type) counts held before they are written out


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


def write_buffer(parts: int) -> int:
    """The write buffer of each of a map task's P + 1 files: 1 MiB while P + 1 of them fit in
    ``WRITE_BUDGET``, then the budget shared out (64 KiB each at 1,024 partitions), never
    under the 8 KiB default."""
    return max(io.DEFAULT_BUFFER_SIZE, min(WRITE_BUFFER, WRITE_BUDGET // (parts + 1)))


_ENCODED = re.compile(r'[\x00-\x1f]|^"')  # ids written as a JSON string (none start with ")


def spill_key(patient_id: str) -> bytes:
    """A patient id as its partition lines start: as it is, or, if it holds a control
    character or starts with ``"``, as a JSON string (which holds neither a tab nor a
    newline). No id written as it is starts with ``"``, so the encoding is lossless."""
    return orjson.dumps(patient_id) if _ENCODED.search(patient_id) else patient_id.encode()


def patient_of_key(key: bytes) -> str:
    """The patient id a partition line's key stands for (``spill_key`` reversed)."""
    found: str = orjson.loads(key) if key[:1] == b'"' else key.decode()
    return found


@contextmanager
def lines_of(url: str) -> Iterator[IO[bytes]]:
    """A file to iterate line by line, through a 1 MiB buffer: with the default 8 KiB one,
    refilling costs as much as parsing when lines are a few KiB (as FHIR resources are)."""
    if "://" not in url and fsspec.utils.infer_compression(url) is None:
        with open(url, "rb", buffering=READ_BUFFER) as fh:
            yield fh
        return
    with fsspec.open(url, "rb", compression="infer") as fh:
        yield io.BufferedReader(fh, READ_BUFFER)


_Route = tuple[bytes, Callable[[bytes], object]]  # a patient's line prefix, its file's write


class _Writer:
    """P partition files (opened on first use) plus the shared file, in one folder."""

    def __init__(self, folder: Path, parts: int) -> None:
        self.folder, self.parts = folder, parts
        self.buffer = write_buffer(parts)  # each file's: P + 1 of them within WRITE_BUDGET
        folder.mkdir(parents=True, exist_ok=True)
        self.files: dict[int, IO[bytes]] = {}
        # a patient's lines come in hundreds, all with the same reference: the id, its
        # encoding and its hash are worked out once per patient (and reference), not per line
        self.routes: dict[str, _Route] = {}
        self.by_reference: dict[str, _Route | None] = {}  # None: names no patient

    def _file(self, index: int) -> IO[bytes]:
        fh = self.files.get(index)
        if fh is None:
            name = "shared.ndjson" if index < 0 else f"p{index:05d}.ndjson"
            fh = self.files[index] = (self.folder / name).open("ab", buffering=self.buffer)
        return fh

    def route(self, pid: str) -> _Route:
        found = self.routes.get(pid)
        if found is None:
            if len(self.routes) > 100_000:
                self.routes.clear()
            fh = self._file(zlib.crc32(pid.encode()) % self.parts)
            found = self.routes[pid] = (spill_key(pid) + b"\t", fh.write)
        return found

    def route_of(self, reference: str) -> _Route | None:
        """The route of the patient a reference names (None if it names none)."""
        if len(self.by_reference) > 100_000:
            self.by_reference.clear()
        pid = patient_in(reference)
        found = self.by_reference[reference] = None if pid is None else self.route(pid)
        return found

    def shared(self, line: bytes) -> None:
        self._file(-1).write(line.rstrip(b"\r\n") + b"\n")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


@dataclass
class _Pass:
    """One map task: its output, stats, progress callback and (optional) code filter."""

    out: _Writer
    stats: MapStats
    tick: Callable[[int], None]
    gate: CodeFilter | None
    # (route, type) -> resources the reader would drop, written out as counts by ``flush``
    dropped: dict[tuple[_Route, str], int] = field(default_factory=dict)

    def resource(self, r: dict[str, Any], kind: str, line: bytes, owner: str | None) -> None:
        """Route a parsed resource of a read type (``owner``: a Bundle's one patient)."""
        pid = patient_of(r)
        if pid is None and owner is not None and kind not in SHARED_TYPES:
            pid = owner
        if pid is not None:
            self.write(self.out.route(pid), kind, r, line)
        elif kind in SHARED_TYPES:
            self.stats.shared[kind] += 1
            self.out.shared(line)
        else:
            self.stats.no_patient[kind] += 1

    def write(self, route: _Route, kind: str, r: dict[str, Any], line: bytes) -> None:
        if self.gate is not None and self.gate.drops(kind, r):
            key = (route, kind)
            self.dropped[key] = self.dropped.get(key, 0) + 1
            if len(self.dropped) > _DROPPED_HELD:
                self.flush()
        else:
            route[1](route[0] + line.rstrip(b"\r\n") + b"\n")

    def flush(self) -> None:
        """Dropped resources, one line per patient and type: they are only ever counted."""
        for ((prefix, write), kind), count in self.dropped.items():
            write(b"%s%s%s\t%d\n" % (prefix, SKIPPED, kind.encode(), count))
        self.dropped.clear()


def _ndjson(src: Source, p: _Pass) -> None:
    """One NDJSON file: lines of a read type are parsed (for their patient; orjson finds it
    faster than any scan of the bytes), others are counted by their peeked type. The common
    case, a resource whose ``subject`` is a reference, is routed here without calls."""
    s = p.stats
    s.files += 1
    seen: dict[str, int] = {}  # resources by type
    unread: dict[bytes, int] = {}  # resources of types not read, by their peeked type
    n = 0
    resource, write, by_reference = p.resource, p.write, p.out.by_reference
    loads, read, read_bytes, prefix = orjson.loads, READ_TYPES, _READ_BYTES, PREFIX
    with lines_of(src.url) as fh:
        for n, line in enumerate(fh, 1):
            if n % 5000 == 0:
                p.tick(5000)
            if line.startswith(prefix):  # the type is peeked: no other type is parsed
                end = line.find(b'"', 17)
                peeked = line[17:end] if end > 0 else b""
                if peeked and peeked not in read_bytes:
                    unread[peeked] = unread.get(peeked, 0) + 1
                    continue
            elif not line.strip():
                continue
            try:
                r = loads(line)
            except orjson.JSONDecodeError:
                _bad_line(src, n, "not a JSON resource (NDJSON)")
            kind = r.get("resourceType") if type(r) is dict else _bad_line(src, n, NOT_OBJECT)
            if type(kind) is not str:
                s.not_resources += 1
                continue
            seen[kind] = seen.get(kind, 0) + 1
            if kind not in read:
                continue
            subject = r.get("subject")
            ref = subject.get("reference") if type(subject) is dict else None
            if type(ref) is not str or not ref or kind in _BY_ID:
                resource(r, kind, line, None)  # what patient_of does, spelt out
                continue
            route = by_reference[ref] if ref in by_reference else p.out.route_of(ref)
            if route is None:
                s.no_patient[kind] += 1
            else:
                write(route, kind, r, line)
    p.tick(n % 5000)
    for raw, count in unread.items():
        kind = raw.decode("utf-8", "replace")
        seen[kind] = seen.get(kind, 0) + count
    for kind, count in seen.items():
        s.resources[kind] += count
        s.ndjson_types.add(kind)
        if kind not in READ_TYPES:
            s.not_read[kind] += count


NOT_OBJECT = "not a JSON object (NDJSON holds one resource a line)"


def _bad_line(src: Source, n: int, reason: str) -> NoReturn:
    raise InvalidInput.single(f"{src.url}:{n}", reason) from None


def _bundle(src: Source, p: _Pass) -> None:
    """A Bundle; in a single-patient Bundle, resources without a subject are that patient's."""
    s = p.stats
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
        p.resource(r, kind, orjson.dumps(r), owner)
    p.tick(len(resources))


def partition_sources(
    sources: Iterable[Source],
    folder: Path,
    parts: int,
    tick: Callable[[int], None] | None = None,
    gate: CodeFilter | None = None,
) -> MapStats:
    """Read ``sources`` once, appending each read resource to its partition under ``folder``.

    With ``gate``, resources the FHIR reader would drop are not written: they are counted per
    patient and type, and written as ``<pid>\\t!<type>\\t<count>`` lines (never parsed)."""
    p = _Pass(_Writer(folder, parts), MapStats(), tick or (lambda n: None), gate)
    try:
        for src in sources:
            (_ndjson if src.kind == "ndjson" else _bundle)(src, p)
        p.flush()
    finally:
        p.out.close()
    return p.stats


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
