"""A private, checked cache of the validated knowledge base, so that a CLI command starts fast.

Validating the knowledge base (parse every YAML file, check each against its schema, then
every cross-reference and the review log) takes about 0.1 s of CPU, a quarter of
``triggerpath assess``. :func:`~triggerpath.knowledge.loader.load_knowledge` does it once per
process, but each CLI command is a new process. So the console script (and only it:
``entrypoints/cli/__init__.py`` calls :func:`configure`) keeps the validated
:class:`~triggerpath.knowledge.loader.Knowledge` object between runs, as a pickle::

    load_knowledge() ─> key = SHA-256(every file of the knowledge package, versions)
                          ├─ <dir>/knowledge-<key>.pickle private, header names key,
                          │   payload digest matches, object is a Knowledge   ─> use it
                          └─ otherwise: validate from the YAML (as without a cache),
                              write a new entry atomically ─> use the validated one

**Key.** SHA-256 over this cache's format number, the Python version, the versions of
TriggerPath, pydantic and pydantic-core, and the relative name and bytes of every ``.py``
and ``.yaml`` file of the ``triggerpath.knowledge`` package: the data *and* the code that
validates it. Editing any knowledge file (or any schema, check or this module), upgrading
a library or Python gives a different key, so a stale entry is never read. The key is
computed again after validating and the entry is written only if it is unchanged (a file
edited during the run is not cached under the old key).

**Entry.** ``knowledge-<key>.pickle``: one header line ``MAGIC key payload-sha256``, then
the payload. It is used only if the directory and the file belong to the current user and
no one else can write them (the file is not a symbolic link), the header names the key,
the payload's digest matches (a truncated or corrupt entry is rebuilt) and the unpickled
object is a ``Knowledge``. Anything else is a miss: the knowledge base is validated from
the YAML and the entry rewritten. Entries are written to a temporary file in the same
directory (mode 0600, directory 0700) and renamed into place, so a reader never sees half
an entry; the newest :data:`KEEP` entries are kept (one per installed version).

A pickle runs code when loaded, so the entry is trusted exactly as far as the user's own
files are (like Python's ``__pycache__``): whoever can write the user's cache directory
can already change their shell start-up. Hazard HAZ-024 in ``docs/safety/hazard-log.yaml``.

**Where.** ``TRIGGERPATH_KNOWLEDGE_CACHE``: ``off`` (or ``0``, ``false``, ``no``) turns the
cache off; a path names the directory; unset, the platform's user cache directory:
``$XDG_CACHE_HOME/triggerpath`` or ``~/.cache/triggerpath`` (Linux/BSD),
``~/Library/Caches/triggerpath`` (macOS), ``%LOCALAPPDATA%\\TriggerPath\\Cache`` (Windows):
never inside the installed package. A directory that others can write is not used at all.
Failing to write an entry (read-only home, full disk) costs only speed.

This module imports only the standard library at import time: the console script imports
it before it knows which command runs (``triggerpath --version`` must stay fast).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ENV = "TRIGGERPATH_KNOWLEDGE_CACHE"
OFF = frozenset({"off", "0", "false", "no"})
#: Bump when the entry layout or what is pickled changes shape.
FORMAT = 1
MAGIC = b"triggerpath-knowledge-cache"
PREFIX = "knowledge-"
SUFFIX = ".pickle"
#: Entries kept in the directory (newest first); older ones are removed on write.
KEEP = 4
#: The files whose bytes make up the key: the knowledge package's code and data.
PACKAGE = Path(__file__).resolve().parent
HASHED = (".py", ".yaml")
PROTOCOL = 5

T = TypeVar("T")


@dataclass
class _Setting:
    directory: Path | None = None


_SETTING = _Setting()


def configure(directory: Path | None) -> None:
    """Keep the validated knowledge base in ``directory`` between processes (None: off).

    Only the console script calls this; a library user, a server started from Python and
    the tests validate from the YAML in every process.
    """
    _SETTING.directory = directory


def configured() -> Path | None:
    """The directory :func:`configure` set, or None (no cache)."""
    return _SETTING.directory


def cache_dir(environ: Mapping[str, str]) -> Path | None:
    """The cache directory ``environ`` asks for (see the module docstring); None when off."""
    value = environ.get(ENV, "").strip()
    if value.lower() in OFF:
        return None
    try:
        return Path(value).expanduser().absolute() if value else _default_dir(environ)
    except RuntimeError:  # no home directory to expand or to default to: no cache
        return None


def _default_dir(environ: Mapping[str, str]) -> Path:
    if sys.platform == "win32":
        base = environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "TriggerPath" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "triggerpath"
    xdg = environ.get("XDG_CACHE_HOME", "")
    base_dir = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base_dir / "triggerpath"


def cache_key() -> str | None:
    """SHA-256 of everything the validated knowledge base depends on; None when the
    package's files cannot be read (then nothing is cached)."""
    import pydantic
    import pydantic_core

    from triggerpath import __version__

    digest = hashlib.sha256()
    versions = [str(FORMAT), str(sys.implementation.cache_tag), sys.version, __version__]
    versions += [pydantic.VERSION, pydantic_core.__version__]
    digest.update("\0".join(versions).encode())
    try:
        files = package_files()
        for name in files:
            data = (PACKAGE / name).read_bytes()
            digest.update(f"\0{name}\0{len(data)}\0".encode())
            digest.update(data)
    except OSError:
        return None
    return digest.hexdigest() if files else None


def package_files() -> list[str]:
    """The knowledge package's ``.py`` and ``.yaml`` files, relative, sorted (no caches)."""
    found = []
    for top, dirs, names in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = Path(top).relative_to(PACKAGE)
        found += [(rel / n).as_posix() for n in names if n.endswith(HASHED)]
    return sorted(found)


def entry_path(directory: Path, key: str) -> Path:
    return directory / f"{PREFIX}{key}{SUFFIX}"


def load_cached(directory: Path, build: Callable[[], T], expect: type[T]) -> T:
    """The cached ``expect`` for the current key, or ``build()`` (then cached).

    ``build`` is the validating loader; whatever it raises (a ``KnowledgeError``) passes
    through and nothing is written.
    """
    key = cache_key()
    if key is None:
        return build()
    path = entry_path(directory, key)
    hit = read_entry(path, key, expect)
    if hit is not None:
        return hit
    value = build()
    if cache_key() == key:  # no knowledge file changed while it was validated
        write_entry(path, key, value)
    return value


def _private(path: Path, *, directory: bool) -> bool:
    """``path`` belongs to this user and no one else may write it (POSIX; Windows: yes)."""
    st = os.stat(path) if directory else os.lstat(path)
    if not (stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)):
        return False
    if not hasattr(os, "geteuid"):
        return True
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _header(key: str, payload: bytes) -> bytes:
    return b"%s %s %s\n" % (MAGIC, key.encode(), hashlib.sha256(payload).hexdigest().encode())


def read_entry(path: Path, key: str, expect: type[T]) -> T | None:
    """The object in the entry at ``path`` if every check passes, else None."""
    try:
        if not (_private(path.parent, directory=True) and _private(path, directory=False)):
            return None
        data = path.read_bytes()
    except OSError:
        return None
    head, _, payload = data.partition(b"\n")
    if head + b"\n" != _header(key, payload):
        return None  # another key, another format, or a corrupt / truncated payload
    try:
        value = pickle.loads(payload)  # a private entry whose digest was checked above
    except Exception:  # any failure to unpickle is a miss, never an error
        return None
    return value if isinstance(value, expect) else None


def write_entry(path: Path, key: str, value: object) -> bool:
    """Write the entry atomically; False (and nothing left behind) when it cannot be."""
    import tempfile

    directory = path.parent
    try:
        payload = pickle.dumps(value, protocol=PROTOCOL)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(directory, directory=True):
            return False
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{PREFIX}", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_header(key, payload) + payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(directory)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


def _prune(directory: Path) -> None:
    """Remove all but the newest :data:`KEEP` entries, and temporary files over an hour old."""
    import time

    entries = []
    for p in directory.iterdir():
        try:
            if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX):
                entries.append((p.stat().st_mtime, p))
            elif p.name.startswith(f".{PREFIX}") and p.stat().st_mtime < time.time() - 3600:
                p.unlink()
        except OSError:
            continue
    for _, old in sorted(entries, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)


__all__ = ["ENV", "cache_dir", "cache_key", "configure", "configured", "load_cached"]
