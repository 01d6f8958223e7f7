"""Where a population's FHIR resources are: local paths or fsspec URLs, expanded to files.

Accepted: Bulk Data NDJSON files (``.ndjson``, ``.ndjson.gz``), folders of them, Bundle
files (``.json``) and folders of Bundles, any fsspec URL of those (``file://``,
``http(s)://``, ``s3://`` … so that cluster workers read shared storage), and the Bulk Data
``$export`` status response (the *manifest*), whose ``output`` files are read (relative URLs
are resolved against the manifest's location). A folder with NDJSON files is read as an
export (a manifest or other JSON beside them is not read twice).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import fsspec
import orjson

from triggerpath.errors import InvalidInput

Kind = Literal["ndjson", "bundle"]
NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".ndjson.bz2", ".ndjson.xz")
SNIFF_BYTES = 65536


@dataclass(frozen=True, slots=True)
class Source:
    """One file to read: its URL (or local path), what it holds and its size if known."""

    url: str
    kind: Kind
    size: int | None = None


def _fs(url: str) -> tuple[Any, str]:
    try:
        fs, path = fsspec.core.url_to_fs(url)
        return fs, str(path)
    except (ValueError, ImportError) as exc:
        raise InvalidInput.single("PATH", f"{url}: {exc}") from None


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].lower()


def _full(fs: Any, path: str, original: str) -> str:
    """The URL workers can open: local paths stay paths, remote ones keep their protocol."""
    if "://" not in original:
        return str(path)
    return str(fs.unstrip_protocol(path))


def _folder(fs: Any, path: str, original: str) -> list[Source]:
    entries = sorted(fs.ls(path, detail=True), key=lambda e: str(e["name"]))
    files = [e for e in entries if e.get("type") == "file"]
    ndjson = [e for e in files if _name(e["name"]).endswith(NDJSON_SUFFIXES)]
    if ndjson:
        return [Source(_full(fs, e["name"], original), "ndjson", e.get("size")) for e in ndjson]
    bundles = [e for e in files if _name(e["name"]).endswith((".json", ".json.gz"))]
    return [Source(_full(fs, e["name"], original), "bundle", e.get("size")) for e in bundles]


def _manifest_outputs(manifest: Any, url: str) -> list[Source]:
    """The ``output`` files of a Bulk Data status response (the ``error`` files are not data)."""
    outputs = manifest.get("output")
    if not isinstance(outputs, list):
        raise InvalidInput.single(f"{url}.output", "a Bulk Data manifest needs an output list")
    base = url.rsplit("/", 1)[0] if "/" in url else "."
    found: list[Source] = []
    for i, entry in enumerate(outputs):
        target = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(target, str) or not target:
            raise InvalidInput.single(f"{url}.output[{i}].url", "missing")
        absolute = "://" in target or target.startswith("/")
        found.append(Source(target if absolute else f"{base}/{target}", "ndjson"))
    return found


def _file(fs: Any, path: str, original: str) -> list[Source]:
    url = _full(fs, path, original)
    name = _name(path)
    size = fs.size(path)
    if name.endswith(NDJSON_SUFFIXES):
        return [Source(url, "ndjson", size)]
    with fsspec.open(url, "rb", compression="infer") as fh:
        head = fh.read(SNIFF_BYTES)
    if b'"resourceType"' in head:
        return [Source(url, "bundle", size)]
    try:
        manifest = orjson.loads(head) if len(head) < SNIFF_BYTES else None
    except orjson.JSONDecodeError:
        manifest = None
    if isinstance(manifest, dict) and "output" in manifest:
        return _manifest_outputs(manifest, url)
    raise InvalidInput.single(
        "PATH", f"{url}: neither a FHIR Bundle, NDJSON nor a Bulk Data manifest"
    )


def expand_inputs(inputs: Iterable[str]) -> list[Source]:
    """Every file to read, in a stable order (the order never changes the result)."""
    sources: list[Source] = []
    for original in inputs:
        fs, path = _fs(original)
        try:
            exists = fs.exists(path)
        except OSError as exc:
            raise InvalidInput.single("PATH", f"{original}: {exc}") from None
        if not exists:
            raise InvalidInput.single("PATH", f"{original} does not exist")
        sources += _folder(fs, path, original) if fs.isdir(path) else _file(fs, path, original)
    if not sources:
        raise InvalidInput.single("PATH", "no NDJSON or Bundle files in the input")
    return sources
