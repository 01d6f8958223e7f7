"""The house rules as tests: import contracts and short functions (docs/architecture.md).

- ``lint-imports`` (contracts in ``pyproject.toml`` ``[tool.importlinter]``) must pass, so a
  layer breach or an import cycle fails under pytest as well as in ``scripts/test``.
- Every function in ``src/triggerpath/domain/`` and ``src/triggerpath/services/`` is at most
  60 lines (``def`` line to last line, docstring included), measured with ``ast``.
  ``KNOWN_LONG`` names the long functions that exist today and who owns them; it may only
  shrink: an entry whose function is now short (or gone) fails too, so the owner deletes it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "triggerpath"
CHECKED = ("domain", "services")
MAX_LINES = 60

#: "path below src/triggerpath:qualified.name" -> owner. Only ever delete lines here.
KNOWN_LONG: dict[str, str] = {}


def function_lengths(package: Path = PACKAGE) -> Iterator[tuple[str, int]]:
    """("domain/x.py:Class.method", lines) for every function in the checked folders."""
    for folder in CHECKED:
        for path in sorted((package / folder).rglob("*.py")):
            rel = path.relative_to(package).as_posix()
            yield from _walk(ast.parse(path.read_text(encoding="utf-8")), f"{rel}:")


def _walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            assert child.end_lineno is not None
            yield prefix + child.name, child.end_lineno - child.lineno + 1
            yield from _walk(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _walk(child, f"{prefix}{child.name}.")


def test_import_contracts_hold() -> None:
    beside = Path(sys.executable).with_name("lint-imports")  # the venv running pytest
    lint = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert lint, "lint-imports (import-linter) is not installed"
    run = subprocess.run(
        [lint, "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_functions_in_domain_and_services_are_short() -> None:
    too_long = {
        name: n for name, n in function_lengths() if n > MAX_LINES and name not in KNOWN_LONG
    }
    assert not too_long, (
        f"functions over {MAX_LINES} lines (make them pipelines of named steps): {too_long}"
    )


def test_known_long_list_only_shrinks() -> None:
    lengths = dict(function_lengths())
    fixed = sorted(name for name in KNOWN_LONG if lengths.get(name, 0) <= MAX_LINES)
    assert not fixed, f"now short or gone: delete these KNOWN_LONG entries: {fixed}"


def test_the_measure_sees_a_long_function(tmp_path: Path) -> None:
    """The ast measure counts def line to last line, nested functions and methods too."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "domain").mkdir()
    (tmp_path / "services").mkdir()
    (tmp_path / "domain" / "m.py").write_text(
        f"def long():\n{body}\n\nclass K:\n    def short(self):\n        return 1\n"
    )
    found = dict(function_lengths(tmp_path))
    assert found == {"domain/m.py:long": MAX_LINES + 1, "domain/m.py:K.short": 2}
