"""Run the ```` ```bash ```` blocks of a Markdown document, in order, as a reader would.

The docs convention (TEAM.md): in ``README.md`` and ``docs/**/*.md`` a ```` ```bash ```` block
is a command that must work on a fresh clone without ``../shared``; ```` ```console ```` and
```` ```text ```` blocks are illustrations and are not run.

How a document is run (:func:`run_document`):

* in a **copy of the repository** (its tracked and new files, with ``.venv`` and ``.cache``
  linked), so no block can read ``../shared`` or leave files in the work tree;
* each block in its own ``bash`` (``set -euo pipefail``), from the copy's root, bounded by
  ``timeout`` seconds; exported variables carry over to the next block (as in one terminal),
  so a guide may set names once and use them later;
* with ``.venv/bin`` first on ``PATH`` (the README's ``source .venv/bin/activate``), a
  temporary ``TRIGGERPATH_DATA_DIR`` and ``HOME``, and ``TP_PORT`` set to a free loopback port
  for blocks that start a server (they must start it in the background and stop it).

A failure names the document, the block's number and line, the command's exit status and the
end of its output, so the fix is obvious from the test report alone.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
RUN_LANGUAGES = {"bash"}
#: Variables a block may leave behind that must not be carried over.
SHELL_OWN = {"PWD", "OLDPWD", "SHLVL", "_", "BASHOPTS", "SHELLOPTS", "BASH_EXECUTION_STRING"}


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, first line number (1-based) and text."""

    language: str
    line: int
    text: str


def blocks(markdown: str) -> list[Block]:
    """Every fenced code block of a Markdown text, in order (nested fences respected)."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group("fence"), i
        language = m.group("info").strip().split(" ")[0].lower() if m.group("info") else ""
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = FENCE.match(lines[i])
            if (
                close
                and close.group("fence")[0] == fence[0]
                and len(close.group("fence")) >= len(fence)
                and not close.group("info").strip()
            ):
                break
            body.append(lines[i])
            i += 1
        found.append(Block(language, start + 1, "\n".join(body) + "\n"))
        i += 1
    return found


def runnable(markdown: str) -> list[Block]:
    return [b for b in blocks(markdown) if b.language in RUN_LANGUAGES]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def repo_copy(dest: Path) -> Path:
    """The repository's tracked and new (not ignored) files under ``dest``; venv linked."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    root = dest / REPO.name
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if not src.is_file():
            continue  # deleted in the work tree, not yet committed
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    for linked in (".venv", ".cache"):
        if (REPO / linked).exists():
            (root / linked).symlink_to(REPO / linked)
    return root


def base_env(tmp: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TERM", "TZ", "USER", "LOGNAME", "SHELL")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["VIRTUAL_ENV"] = str(REPO / ".venv")
    env["HOME"] = str(tmp / "home")
    env["TRIGGERPATH_DATA_DIR"] = str(tmp / "data")
    env["TP_PORT"] = str(free_port())
    env["COLUMNS"] = "120"
    (tmp / "home").mkdir(exist_ok=True)
    env.update(extra or {})
    return env


class BlockFailed(AssertionError):
    pass


def run_document(
    doc: Path,
    tmp: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    cwd: Path | None = None,
) -> list[str]:
    """Run every bash block of ``doc`` in order; return each block's output. Raises
    :class:`BlockFailed` naming the block that failed."""
    rel = doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc
    root = cwd or repo_copy(tmp / "repo")
    state = tmp / "exported.sh"
    state.write_text("", encoding="utf-8")
    environment = base_env(tmp, env)
    outputs: list[str] = []
    for number, block in enumerate(runnable(doc.read_text(encoding="utf-8")), start=1):
        script = (
            "set -euo pipefail\n"
            f"source {state}\n"
            f"{block.text}\n"
            f"export -p | grep -Ev '^declare -x ({'|'.join(sorted(SHELL_OWN))})=' > {state}\n"
        )
        where = f"{rel}, bash block {number} (line {block.line})"
        try:
            proc = subprocess.run(
                ["bash", "-c", script],
                cwd=root,
                env=environment,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise BlockFailed(
                f"{where} still running after {timeout:.0f} s (a server must be started in the "
                f"background and stopped by the block itself, or the block be ```console):\n"
                f"{block.text}\n--- output so far ---\n{_tail(exc.stdout)}{_tail(exc.stderr)}"
            ) from None
        if proc.returncode != 0:
            raise BlockFailed(
                f"{where} exited {proc.returncode}:\n{block.text}\n"
                f"--- stdout (end) ---\n{_tail(proc.stdout)}\n--- stderr (end) ---\n"
                f"{_tail(proc.stderr)}"
            )
        outputs.append(proc.stdout + proc.stderr)
    return outputs


def _tail(text: str | bytes | None, lines: int = 40) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])
