"""The CLI loads lazily: ``assess`` imports no web, API or database code, and every command a
module registers is declared by that module's one ``lazy(...)`` line in ``cli/__init__.py``.

No timing here (the machine is shared): ``bench/cli_startup.py`` measures time and memory.
These tests check what makes start-up fast, the modules imported, which can fail for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import typer
from typer.testing import CliRunner

from triggerpath.entrypoints.cli import app
from triggerpath.entrypoints.cli.app import LAZY_APPS, LAZY_MODULES, ROOT, load_all

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = "examples/assessments/ql_chronic_low_back.json"
#: Module prefixes that a command which serves nothing must never import.
HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "weasyprint",
    "dask",
    "distributed",
    "jinja2",
    "httpx",
    "triggerpath.entrypoints.api",
    "triggerpath.entrypoints.web",
    "triggerpath.adapters",
    "triggerpath.services",
)
runner = CliRunner()


def modules_after(*argv: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run the console-script entry point in a fresh interpreter; (exit code, sys.modules)."""
    code = (
        "import atexit, json, sys\n"
        "def dump():\n"
        "    sys.stderr.write('\\nMODULES=' + json.dumps(sorted(sys.modules)))\n"
        "atexit.register(dump)\n"
        f"sys.argv = ['triggerpath', *{list(argv)!r}]\n"
        "from triggerpath.entrypoints.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=None if env is None else {**os.environ, **env},
    )
    marker = proc.stderr.rindex("MODULES=")
    return proc.returncode, set(json.loads(proc.stderr[marker + len("MODULES=") :]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_assess_imports_no_web_api_or_database_module() -> None:
    code, modules = modules_after("assess", EXAMPLE)
    assert code == 0
    assert heavy_in(modules) == [], "assess must not import these (import them lazily)"
    other = {e.module for e in LAZY_MODULES} - {"triggerpath.entrypoints.cli.assess"}
    assert sorted(other & modules) == [], "assess imported another subcommand module"


def test_assess_with_a_warm_knowledge_cache_parses_no_yaml(tmp_path: Path) -> None:
    env = {"TRIGGERPATH_KNOWLEDGE_CACHE": str(tmp_path)}
    cold, cold_modules = modules_after("assess", EXAMPLE, env=env)
    assert cold == 0 and "yaml" in cold_modules, "the first run validates the YAML"
    warm, modules = modules_after("assess", EXAMPLE, env=env)
    assert warm == 0
    assert "yaml" not in modules, "with a cache entry, assess must not read the knowledge YAML"
    off, off_modules = modules_after("assess", EXAMPLE, env={"TRIGGERPATH_KNOWLEDGE_CACHE": "off"})
    assert off == 0 and "yaml" in off_modules


def test_version_imports_no_subcommand_module() -> None:
    code, modules = modules_after("--version")
    assert code == 0
    assert sorted({e.module for e in LAZY_MODULES} & modules) == []
    assert "triggerpath.domain.engine" not in modules


def _registered() -> dict[str, str]:
    """Every command path registered on the lazy apps -> the module that registered it."""
    load_all()
    found: dict[str, str] = {}
    for group, typer_app in LAZY_APPS.items():
        prefix = "" if group == ROOT else f"{group} "
        for info in typer_app.registered_commands:
            assert info.callback is not None
            name = info.name or typer.main.get_command_name(info.callback.__name__)
            found[prefix + name] = info.callback.__module__
        for sub in typer_app.registered_groups:
            if sub.name in LAZY_APPS or sub.typer_instance is None:
                continue  # a lazy group itself: its commands are counted above
            commands = sub.typer_instance.registered_commands
            assert commands, f"group {sub.name!r} has no command"
            assert commands[0].callback is not None
            found[prefix + str(sub.name)] = commands[0].callback.__module__
    return found


def test_every_registered_command_is_declared_by_its_module() -> None:
    declared = {path: e.module for e in LAZY_MODULES for path in e.commands}
    registered = _registered()
    undeclared = {p: m for p, m in registered.items() if p not in declared}
    assert undeclared == {}, (
        "commands registered but not declared: add them to their module's lazy(...) line in "
        "src/triggerpath/entrypoints/cli/__init__.py"
    )
    stale = sorted(set(declared) - set(registered))
    assert stale == [], "declared in cli/__init__.py but no module registers them"
    wrong = {p: (declared[p], m) for p, m in registered.items() if declared[p] != m}
    assert wrong == {}, "declared for one module, registered by another: (declared, actual)"


def test_help_lists_every_declared_command() -> None:
    res = runner.invoke(app, ["--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    top = {p for e in LAZY_MODULES for p in e.commands if " " not in p}
    assert top, "nothing declared"
    missing = sorted(name for name in top if f" {name} " not in res.output)
    assert missing == []
    sub = runner.invoke(app, ["knowledge", "--help"], terminal_width=200)
    assert " show " in sub.output and " injectates " in sub.output


def test_version_is_the_installed_distribution() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"triggerpath {version('triggerpath')}"


def test_completion_of_command_names_imports_nothing() -> None:
    code = (
        "import os, sys\n"
        "os.environ.update(_TRIGGERPATH_COMPLETE='complete_bash', "
        "COMP_WORDS='triggerpath kno', COMP_CWORD='1')\n"
        "sys.argv = ['triggerpath']\n"
        "from triggerpath.entrypoints.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "cli = [m for m in sys.modules if m.startswith('triggerpath.entrypoints.cli.')]\n"
        "print('LOADED=' + ','.join(m for m in cli if m != 'triggerpath.entrypoints.cli.app'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert "knowledge" in proc.stdout.split("LOADED=")[0].split()
    assert proc.stdout.split("LOADED=")[1].strip() == ""


def test_unknown_command_is_a_usage_error_with_a_suggestion() -> None:
    res = runner.invoke(app, ["asess", EXAMPLE])
    assert res.exit_code == 2
    assert "assess" in res.output


def test_knowledge_show_ids_are_case_insensitive() -> None:
    upper = runner.invoke(app, ["knowledge", "show", "S000.22"])
    lower = runner.invoke(app, ["knowledge", "show", "s000.22"])
    assert upper.exit_code == lower.exit_code == 0, lower.output
    assert json.loads(lower.stdout)["id"] == "S000.22"
    assert lower.stdout == upper.stdout
    missing = runner.invoke(app, ["knowledge", "show", "s999.99"])
    assert missing.exit_code == 2
    assert "s999.99" in missing.output
