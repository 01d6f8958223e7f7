"""Every ```bash block in README.md and docs/**/*.md runs, in order, on a clean copy of the
repository without ../shared (see tests/docs_runner.py for how). ```console and ```text
blocks are illustrations and are not run. docs/deploy.md needs PostgreSQL and is run by
tests/test_deploy_guide.py instead (same runner).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .docs_runner import REPO, BlockFailed, blocks, run_document, runnable

#: Run elsewhere, with what they need (PostgreSQL): the test that runs them is named.
RUN_ELSEWHERE = {"docs/deploy.md": "tests/test_deploy_guide.py"}
AMBIGUOUS = {"sh", "shell", "zsh", "shell-session"}


def documents() -> list[Path]:
    docs = sorted((REPO / "docs").rglob("*.md")) if (REPO / "docs").is_dir() else []
    return [REPO / "README.md", *docs]


def _id(doc: Path) -> str:
    return str(doc.relative_to(REPO))


@pytest.mark.parametrize("doc", documents(), ids=_id)
def test_bash_blocks_run(doc: Path, tmp_path: Path) -> None:
    if _id(doc) in RUN_ELSEWHERE:
        pytest.skip(f"run by {RUN_ELSEWHERE[_id(doc)]} (needs PostgreSQL)")
    try:
        run_document(doc, tmp_path)
    except BlockFailed as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.parametrize("doc", documents(), ids=_id)
def test_blocks_say_whether_they_run(doc: Path) -> None:
    """A ```sh or ```shell block could be either: say ```bash (run) or ```console (not)."""
    unclear = [
        f"{_id(doc)}:{b.line}: ```{b.language}"
        for b in blocks(doc.read_text(encoding="utf-8"))
        if b.language in AMBIGUOUS
    ]
    assert unclear == [], "use ```bash (run by the tests) or ```console (an illustration)"


@pytest.mark.parametrize("doc", documents(), ids=_id)
def test_no_bash_block_needs_shared_data(doc: Path) -> None:
    needing = [
        f"{_id(doc)}:{b.line}"
        for b in runnable(doc.read_text(encoding="utf-8"))
        if "../shared" in b.text
    ]
    assert needing == [], "bash blocks must work on a fresh clone: use examples/ (or ```console)"


def test_runner_finds_blocks_and_reports_the_failing_one(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# T\n\n```bash\nexport GREETING=hello\n```\n\n```console\n$ not run\n```\n\n"
        '````bash\n[ "$GREETING" = hello ]\necho "a fence: ~~~"\n````\n\n```bash\nfalse\n```\n',
        encoding="utf-8",
    )
    assert [b.language for b in blocks(doc.read_text())] == ["bash", "console", "bash", "bash"]
    with pytest.raises(BlockFailed, match=r"doc\.md, bash block 3 \(line 16\) exited 1"):
        run_document(doc, tmp_path, cwd=tmp_path)


def test_runner_bounds_a_block_in_time(tmp_path: Path) -> None:
    doc = tmp_path / "slow.md"
    doc.write_text("```bash\nsleep 30\n```\n", encoding="utf-8")
    with pytest.raises(BlockFailed, match="still running after 1 s"):
        run_document(doc, tmp_path, cwd=tmp_path, timeout=1)
