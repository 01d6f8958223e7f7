"""Run a population screen: partition the input, screen every partition, in-process or on dask.

Two phases, the same in every mode so that the answer is the same (patients sorted by id,
counts summed):

1. *map*: groups of input files are streamed once and hash-partitioned by patient into
   ``<work>/g<group>/p<partition>.ndjson`` (``adapters.bulk.partition``);
2. *reduce*: each partition is read back patient by patient and screened
   (``services.screening.screen_partition`` through the ``FhirPartition`` port).

Modes: in-process (small inputs, ``--workers 0``), a ``distributed.LocalCluster`` of N
single-threaded worker processes (``--workers N``), or an existing dask.distributed cluster
(``--scheduler tcp://host:port``; the work directory must then be on storage every worker
mounts). Task functions live at module level so that workers import them by name; errors
come back as data (field, reason) because ``InvalidInput`` does not survive pickling.
"""

from __future__ import annotations

import gc
import importlib
import logging
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from triggerpath.adapters.bulk import (
    MAX_PARTITIONS,
    FhirPartition,
    MapStats,
    Source,
    code_filter,
    partition_sources,
)
from triggerpath.adapters.fhir_r4.read import READ_TYPES
from triggerpath.errors import FieldProblem, InvalidInput
from triggerpath.knowledge import load_knowledge
from triggerpath.knowledge.measures import load_measures
from triggerpath.services.screening import PartitionResult, Period, screen_partition

#: Inputs above this size run on a LocalCluster of all cores unless --workers says otherwise.
SMALL_INPUT_BYTES = 64 * 2**20
#: Input bytes per partition: a partition's read-type resources stay well under 1 GiB parsed.
PARTITION_BYTES = 32 * 2**20

Problems = list[tuple[str, str]]


@dataclass(frozen=True)
class Plan:
    """What to read, how to split it, and as of when."""

    sources: list[Source]
    parts: int
    workers: int  # 0: in-process
    scheduler: str | None
    now: datetime
    period: Period
    work_parent: str | None = None

    @property
    def input_bytes(self) -> int:
        return sum(s.size or 0 for s in self.sources)


@dataclass
class Outcome:
    stats: MapStats
    results: list[PartitionResult] = field(default_factory=list)


def default_workers(sources: Sequence[Source], workers: int | None, scheduler: str | None) -> int:
    """``--workers`` as given; otherwise all cores for large inputs, in-process for small."""
    if workers is not None:
        if workers < 0:
            raise InvalidInput.single("--workers", "must be 0 (in-process) or more")
        return workers
    if scheduler is not None:
        return 0
    big = sum(s.size or 0 for s in sources) > SMALL_INPUT_BYTES
    return (os.cpu_count() or 1) if big else 0


def default_parts(input_bytes: int, workers: int, distributed: bool) -> int:
    parts = max(1, math.ceil(input_bytes / PARTITION_BYTES))
    if distributed:
        parts = max(parts, 2 * max(workers, 1))
    return min(parts, MAX_PARTITIONS)


def group_sources(sources: Sequence[Source], groups: int) -> list[list[Source]]:
    """Split the files into ``groups`` map tasks of similar size (largest first, greedy)."""
    groups = max(1, min(groups, len(sources)))
    bins: list[list[Source]] = [[] for _ in range(groups)]
    loads = [0] * groups
    for src in sorted(sources, key=lambda s: -(s.size or 0)):
        i = loads.index(min(loads))
        bins[i].append(src)
        loads[i] += src.size or 1
    return [b for b in bins if b]


# --------------------------------------------------------------------------- tasks
@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Parsed FHIR JSON is acyclic (reference counting frees it), but the cyclic collector
    would rescan every live resource again and again while a patient is built up: off
    while a task runs (about a third of the reduce time), back on afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def map_task(sources: list[Source], folder: str, parts: int) -> MapStats | Problems:
    """Partition ``sources`` into ``folder`` (runs on a worker or in-process)."""
    return _partition_here(sources, folder, parts, lambda n: None)


def reduce_task(
    work: str, index: int, now: datetime, period: Period, available: frozenset[str] | None
) -> PartitionResult | Problems:
    """Screen partition ``index`` of ``work`` (runs on a worker or in-process)."""
    kb = load_knowledge()
    try:
        with _no_cycle_collection():
            source = FhirPartition(Path(work), index, kb, now, available)
            return screen_partition(source, kb, load_measures(), period)
    except InvalidInput as exc:
        return [(p.field, p.reason) for p in exc.problems]


def _check(value: Any) -> Any:
    if isinstance(value, list):
        raise InvalidInput([FieldProblem(f, r) for f, r in value])
    return value


def available_types(stats: MapStats) -> frozenset[str] | None:
    """Bulk exports tell which types were exported; a Bundle is a whole record (None)."""
    return frozenset(stats.ndjson_types & READ_TYPES) if stats.ndjson_types else None


# --------------------------------------------------------------------------- progress
class ScreenProgress:
    """Rich progress on stderr, shown only once a run has lasted a second (never if quiet)."""

    def __init__(self, quiet: bool, parts: int, console: Console | None = None) -> None:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(show_speed=True),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=quiet,
            transient=False,
        )
        self.read: TaskID = self.bar.add_task("resources read", total=None)
        self.parts: TaskID = self.bar.add_task("partitions done", total=parts)
        self.patients: TaskID = self.bar.add_task("patients screened", total=None)
        self._timer = threading.Timer(1.0, self.bar.start)
        self._timer.daemon = True

    def __enter__(self) -> ScreenProgress:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        if self.bar.live.is_started:
            self.bar.stop()

    def resources(self, n: int) -> None:
        self.bar.advance(self.read, n)

    def partition(self, result: PartitionResult) -> None:
        self.bar.advance(self.parts, 1)
        self.bar.advance(self.patients, len(result.patients))


# --------------------------------------------------------------------------- execution


def _run_in_process(plan: Plan, work: Path, progress: ScreenProgress) -> Outcome:
    stats = _check(
        _partition_here(plan.sources, str(work / "g0000"), plan.parts, progress.resources)
    )
    outcome = Outcome(stats)
    available = available_types(stats)
    for i in range(plan.parts):
        result = _check(reduce_task(str(work), i, plan.now, plan.period, available))
        progress.partition(result)
        outcome.results.append(result)
    return outcome


def _partition_here(
    sources: list[Source], folder: str, parts: int, tick: Callable[[int], None]
) -> MapStats | Problems:
    try:
        gate = code_filter(load_knowledge())
        with _no_cycle_collection():
            return partition_sources(sources, Path(folder), parts, tick, gate)
    except InvalidInput as exc:
        return [(p.field, p.reason) for p in exc.problems]


def _run_on_dask(plan: Plan, work: Path, progress: ScreenProgress, client: Any) -> Outcome:
    as_completed = _distributed().as_completed
    groups = group_sources(plan.sources, max(1, 2 * _worker_count(client)))
    maps = [
        client.submit(map_task, g, str(work / f"g{i:04d}"), plan.parts, pure=False)
        for i, g in enumerate(groups)
    ]
    stats = MapStats()
    for fut in as_completed(maps):
        part: MapStats = _check(fut.result())
        stats.merge(part)
        progress.resources(sum(part.resources.values()))
    outcome = Outcome(stats)
    available = available_types(stats)
    reduces = [
        client.submit(reduce_task, str(work), i, plan.now, plan.period, available, pure=False)
        for i in range(plan.parts)
    ]
    for fut in as_completed(reduces):
        result: PartitionResult = _check(fut.result())
        progress.partition(result)
        outcome.results.append(result)
    return outcome


def _worker_count(client: Any) -> int:
    return len(client.scheduler_info(n_workers=-1).get("workers", {})) or 1


def _distributed() -> Any:
    """dask.distributed, imported when a cluster is used (in-process runs start faster)."""
    return importlib.import_module("distributed")


@contextmanager
def _client(plan: Plan) -> Iterator[Any]:
    """A dask client: to the given scheduler, or to a LocalCluster torn down afterwards."""
    dd = _distributed()
    if plan.scheduler is not None:
        try:
            client = dd.Client(plan.scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InvalidInput.single("--scheduler", f"{plan.scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = dd.LocalCluster(
        n_workers=plan.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = dd.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_screen(plan: Plan, *, quiet: bool, console: Console | None = None) -> Outcome:
    """Partition and screen ``plan``; the work directory is removed whatever happens."""
    work = Path(tempfile.mkdtemp(prefix="triggerpath-screen-", dir=plan.work_parent))
    try:
        with ScreenProgress(quiet, plan.parts, console) as progress:
            if plan.scheduler is None and plan.workers == 0:
                return _run_in_process(plan, work, progress)
            with _client(plan) as client:
                return _run_on_dask(plan, work, progress, client)
    finally:
        shutil.rmtree(work, ignore_errors=True)
