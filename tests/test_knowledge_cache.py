"""The console script's cache of the validated knowledge base (knowledge/cache.py, HAZ-027).

What must hold: an entry gives the very knowledge base validation gives (the same output
for every example); any change to a knowledge file (data or code) is a miss, so the edited
file is validated, and a broken edit fails as it would without a cache; a corrupt,
truncated, foreign or other-writable entry is never used and is rebuilt; the cache can be
turned off and lives in the user's cache directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from triggerpath.domain.engine import assess
from triggerpath.domain.validation import parse_assessment
from triggerpath.errors import FieldProblem, KnowledgeError
from triggerpath.knowledge import Knowledge, cache, loader
from triggerpath.knowledge.review import review_of

from .conftest import AS_OF, EXAMPLES

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = "examples/assessments/ql_chronic_low_back.json"
#: Console-script entry point, run from a given ``src`` tree (PYTHONPATH) in a fresh process.
MAIN = "import sys; from triggerpath.entrypoints.cli import main; sys.argv[0] = 'tp'; main()"


class Counting:
    """A validating build that counts how often it ran (a cache hit does not run it)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Knowledge:
        self.calls += 1
        return loader.validate_knowledge()


def only_entry(directory: Path) -> Path:
    entries = sorted(directory.glob("knowledge-*.pickle"))
    assert len(entries) == 1, entries
    return entries[0]


# --------------------------------------------------------------------------- same knowledge
def test_an_entry_is_the_validated_knowledge_base(tmp_path: Path) -> None:
    build = Counting()
    first = cache.load_cached(tmp_path, build, Knowledge)
    second = cache.load_cached(tmp_path, build, Knowledge)
    assert build.calls == 1, "the second load must come from the entry"
    assert second is not first
    fresh = loader.validate_knowledge()
    for name in loader.FILES:
        part = name.removesuffix(".yaml")
        assert getattr(second, part).model_dump() == getattr(fresh, part).model_dump(), name
    assert second.statements.keys() == fresh.statements.keys()
    assert second.muscles == fresh.muscles and second.hazards == fresh.hazards
    assert review_of(second).items == review_of(fresh).items
    index, fresh_index = second.valuesets.index, fresh.valuesets.index
    assert (index.exact, index.prefix, index.names) == (
        fresh_index.exact,
        fresh_index.prefix,
        fresh_index.names,
    )


def test_every_example_gets_the_same_recommendation_from_an_entry(tmp_path: Path) -> None:
    cache.load_cached(tmp_path, loader.validate_knowledge, Knowledge)
    cached = cache.load_cached(tmp_path, Counting(), Knowledge)
    fresh = loader.validate_knowledge()
    names = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "expected.json")
    assert len(names) >= 12
    for path in names:
        data = json.loads(path.read_text())
        want = assess(parse_assessment(data, fresh), fresh, as_of=AS_OF)
        got = assess(parse_assessment(data, cached), cached, as_of=AS_OF)
        assert got.model_dump(mode="json") == want.model_dump(mode="json"), path.name


# --------------------------------------------------------------------------- invalidation
@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the knowledge package whose files make up the key."""
    copy = tmp_path / "knowledge"
    shutil.copytree(cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", copy)
    return copy


@pytest.mark.parametrize("changed", ["data/pathway.yaml", "data/review.yaml", "schema.py"])
def test_changing_any_knowledge_file_is_a_miss(
    package_copy: Path, tmp_path: Path, changed: str
) -> None:
    directory = tmp_path / "cache"
    build = Counting()
    cache.load_cached(directory, build, Knowledge)
    before = cache.cache_key()
    with (package_copy / changed).open("a", encoding="utf-8") as fh:
        fh.write("\n# one more line\n")
    assert cache.cache_key() != before
    cache.load_cached(directory, build, Knowledge)
    assert build.calls == 2, f"an edit of {changed} must be validated, not read from the cache"
    cache.load_cached(directory, build, Knowledge)
    assert build.calls == 2  # the new content's entry is used from then on


def test_a_library_upgrade_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    import pydantic

    before = cache.cache_key()
    monkeypatch.setattr(pydantic, "VERSION", pydantic.VERSION + ".post1")
    assert cache.cache_key() != before


def src_copy(tmp_path: Path) -> Path:
    """A copy of this tree's ``src``, to edit its knowledge files and run it."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def run_cli(src: Path, cache_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src), cache.ENV: str(cache_dir)}
    return subprocess.run(
        [sys.executable, "-c", MAIN, *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_console_script_validates_an_edited_knowledge_file(tmp_path: Path) -> None:
    src, directory = src_copy(tmp_path), tmp_path / "cache"
    first = run_cli(src, directory, "assess", EXAMPLE, "--format", "json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["knowledge_version"] == "2026.12.0"
    only_entry(directory)
    manifest = src / "triggerpath" / "knowledge" / "data" / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace('"2026.12.0"', '"2026.12.99"'))
    edited = run_cli(src, directory, "assess", EXAMPLE, "--format", "json")
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["knowledge_version"] == "2026.12.99"
    assert len(list(directory.glob("knowledge-*.pickle"))) == 2
    # a broken edit fails as it does without a cache, although valid entries exist
    pathway = manifest.with_name("pathway.yaml")
    pathway.write_text(pathway.read_text().replace("S000.11", "S999.99", 1))
    broken = run_cli(src, directory, "assess", EXAMPLE)
    assert broken.returncode == 3, broken.stdout
    assert "unknown statement id S999.99" in broken.stderr
    assert len(list(directory.glob("knowledge-*.pickle"))) == 2, "a failed load writes nothing"


def test_a_knowledge_error_writes_no_entry(tmp_path: Path) -> None:
    def broken() -> Knowledge:
        raise KnowledgeError([FieldProblem("pathway.yaml", "broken")])

    with pytest.raises(KnowledgeError):
        cache.load_cached(tmp_path, broken, Knowledge)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- damaged entries
def _damage_payload(data: bytes) -> bytes:
    return data[:-10] + bytes(b ^ 0xFF for b in data[-10:])


def _edit_content(data: bytes) -> bytes:
    """Still a valid pickle, with other knowledge in it: only the digest can tell."""
    assert data.count(b"2026.12.0") == 1
    return data.replace(b"2026.12.0", b"2026.12.9")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated (a write cut short)
        _damage_payload,  # bytes of the payload changed
        _edit_content,  # a value changed, the pickle still loads
        lambda data: b"garbage\n" + data,  # not an entry at all
        lambda data: b"",  # empty
    ],
    ids=["truncated", "payload-changed", "content-edited", "no-header", "empty"],
)
def test_a_corrupt_entry_is_rebuilt(tmp_path: Path, damage: Any) -> None:
    build = Counting()
    cache.load_cached(tmp_path, build, Knowledge)
    entry = only_entry(tmp_path)
    good = entry.read_bytes()
    entry.write_bytes(damage(good))
    kb = cache.load_cached(tmp_path, build, Knowledge)
    assert build.calls == 2, "a damaged entry must not be used"
    assert kb.version == loader.validate_knowledge().version
    assert entry.read_bytes() == good, "the entry is rewritten whole"
    cache.load_cached(tmp_path, build, Knowledge)
    assert build.calls == 2


def test_an_entry_holding_something_else_is_not_used(tmp_path: Path) -> None:
    key = cache.cache_key()
    assert key is not None
    entry = cache.entry_path(tmp_path, key)
    assert cache.write_entry(entry, key, {"not": "a knowledge base"})
    build = Counting()
    kb = cache.load_cached(tmp_path, build, Knowledge)
    assert build.calls == 1 and isinstance(kb, Knowledge)


def test_an_entry_for_another_key_is_not_used(tmp_path: Path) -> None:
    key = cache.cache_key()
    assert key is not None
    path = cache.entry_path(tmp_path, key)
    # an older content's entry under this content's file name: its header names its own key
    assert cache.write_entry(path, "0" * 64, loader.validate_knowledge())
    assert cache.read_entry(path, "0" * 64, Knowledge) is not None
    assert cache.read_entry(path, key, Knowledge) is None


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_an_entry_others_can_write_is_not_used(tmp_path: Path) -> None:
    build = Counting()
    cache.load_cached(tmp_path, build, Knowledge)
    entry = only_entry(tmp_path)
    entry.chmod(0o666)
    cache.load_cached(tmp_path, build, Knowledge)
    assert build.calls == 2
    assert entry.stat().st_mode & 0o777 == 0o600, "rewritten private"
    tmp_path.chmod(0o777)
    try:
        cache.load_cached(tmp_path, build, Knowledge)
        assert build.calls == 3, "a directory others can write is not used"
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    build = Counting()
    real = tmp_path / "real"
    cache.load_cached(real, build, Knowledge)
    entry = only_entry(real)
    linked = tmp_path / "linked"
    linked.mkdir(mode=0o700)
    (linked / entry.name).symlink_to(entry)
    key = cache.cache_key()
    assert key is not None and cache.read_entry(entry, key, Knowledge) is not None
    assert cache.read_entry(linked / entry.name, key, Knowledge) is None


def test_an_unwritable_directory_costs_only_speed(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-a-directory"
    blocked.write_text("")
    build = Counting()
    kb = cache.load_cached(blocked / "cache", build, Knowledge)
    assert isinstance(kb, Knowledge) and build.calls == 1


def test_only_the_newest_entries_are_kept(tmp_path: Path) -> None:
    kb = loader.validate_knowledge()
    for i in range(cache.KEEP + 3):
        key = f"{i:064x}"
        path = cache.entry_path(tmp_path, key)
        assert cache.write_entry(path, key, kb)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    kept = sorted(p.name for p in tmp_path.glob("knowledge-*.pickle"))
    assert len(kept) == cache.KEEP
    assert kept[-1] == cache.entry_path(tmp_path, f"{cache.KEEP + 2:064x}").name


# --------------------------------------------------------------------------- where, and off
@pytest.mark.parametrize("value", ["off", "0", "false", "NO", " off "])
def test_the_cache_can_be_turned_off(value: str) -> None:
    assert cache.cache_dir({cache.ENV: value}) is None


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG layout")
def test_the_cache_lives_in_the_users_cache_directory(tmp_path: Path) -> None:
    assert cache.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "triggerpath"
    home = Path.home() / ".cache" / "triggerpath"
    assert cache.cache_dir({}) == home
    assert cache.cache_dir({"XDG_CACHE_HOME": "relative/dir"}) == home  # XDG: absolute only
    assert cache.cache_dir({cache.ENV: str(tmp_path / "x")}) == tmp_path / "x"
    site = Path(cache.__file__).resolve().parents[2]
    assert site not in (cache.cache_dir({}) or home).parents


def test_no_home_directory_means_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert cache.cache_dir({}) is None


def test_the_console_script_caches_and_off_means_no_entry(tmp_path: Path) -> None:
    on, off = tmp_path / "on", tmp_path / "off"
    env = {k: v for k, v in os.environ.items() if k != cache.ENV}
    script = Path(sys.executable).parent / "triggerpath"
    runs = []
    for value, directory in (("", on), ("", on), ("off", off)):
        run_env = {**env, "XDG_CACHE_HOME": str(directory)}
        if value:
            run_env[cache.ENV] = value
        proc = subprocess.run(
            [str(script), "assess", EXAMPLE, "--format", "json", "--as-of", "2026-11-21"],
            cwd=REPO,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout)
    assert runs[0] == runs[1] == runs[2], "the same bytes with and without the cache"
    only_entry(on / "triggerpath")
    assert not off.exists()


def test_tests_and_libraries_validate_from_the_yaml() -> None:
    assert cache.configured() is None, "only the console script turns the cache on"


@pytest.mark.parametrize(("argv", "cached"), [(["serve", "--help"], False), (["--help"], True)])
def test_a_serving_command_validates_from_the_yaml(
    tmp_path: Path, argv: list[str], cached: bool
) -> None:
    code = (
        "import atexit, sys\n"
        "from triggerpath.knowledge import cache\n"
        "atexit.register(lambda: sys.stderr.write(f'\\nCONFIGURED={cache.configured()}'))\n"
        f"sys.argv = ['triggerpath', *{argv!r}]\n"
        "from triggerpath.entrypoints.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, cache.ENV: str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    configured = proc.stderr.rsplit("CONFIGURED=", 1)[1].strip()
    assert configured == (str(tmp_path) if cached else "None")
