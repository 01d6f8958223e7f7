"""Population-scale FHIR input: sources (files, folders, fsspec URLs, Bulk Data manifests),
one streaming pass that hash-partitions resources by patient into a work directory, and the
partition reader that hands each patient's snapshot to the screening service."""

from triggerpath.adapters.bulk.codes import CodeFilter, code_filter
from triggerpath.adapters.bulk.partition import (
    MAX_PARTITIONS,
    MapStats,
    partition_of,
    partition_sources,
)
from triggerpath.adapters.bulk.reader import FhirPartition
from triggerpath.adapters.bulk.sources import Source, expand_inputs

__all__ = [
    "MAX_PARTITIONS",
    "CodeFilter",
    "FhirPartition",
    "MapStats",
    "Source",
    "code_filter",
    "expand_inputs",
    "partition_of",
    "partition_sources",
]
