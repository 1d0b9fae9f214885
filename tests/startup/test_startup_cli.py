"""The lazy CLI root: `liebian --help` lists every command from liebian/cli.py's tables without
importing a domain, and the tables say what the modules say."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import click
import typer
from typer.testing import CliRunner

from liebian import cli
from liebian.auth.cli_guard import iter_commands

# Libraries `liebian --help` and the app's import must not pay for (issue #17: they took seconds).
HEAVY = (
    "sklearn", "scipy", "statsmodels", "lifetimes", "pandas", "numpy", "ibis", "duckdb", "pyarrow",
    "alembic", "PIL", "qrcode", "openpyxl", "httpx",
)  # fmt: skip


def _modules_after(code: str) -> set[str]:
    """Names of the modules loaded once `code` has run in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_help_imports_no_domain_and_no_heavy_library() -> None:
    loaded = _modules_after(
        "from liebian.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    )
    domain_clis = sorted(
        m for m in loaded if m.startswith("liebian.") and m.endswith(".cli") and m != "liebian.cli"
    )
    assert not domain_clis, f"`liebian --help` imported {domain_clis}"
    assert "liebian.job_cli" not in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"`liebian --help` imported {heavy}"


def test_help_lists_every_command_with_the_tables_help() -> None:
    result = CliRunner().invoke(cli.app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for _module, name, help_text in (*cli.ROOT_COMMANDS, *cli.DOMAINS):
        line = next((line for line in result.output.splitlines() if line.startswith(f"│ {name} ")), "")
        assert help_text in line, f"{name}: {line!r}"


def test_root_command_table_matches_the_modules() -> None:
    """A root command's help in the table is its docstring's first line, and its module offers no
    command the table does not list."""
    for module_name in {module for module, _name, _help in cli.ROOT_COMMANDS}:
        holder = typer.Typer()
        holder.add_typer(importlib.import_module(module_name).app)
        offered = typer.main.get_group(holder).commands
        listed = {name: help_text for module, name, help_text in cli.ROOT_COMMANDS if module == module_name}
        assert set(offered) == set(listed), module_name
        for name, command in offered.items():
            assert command.get_short_help_str(limit=1000) == listed[name]


def test_a_group_loads_when_invoked_and_is_guarded() -> None:
    result = CliRunner().invoke(cli.app, ["campaign", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Fission campaigns, invites and posters." in result.output and " list " in result.output
    assert _guarded(cli.load_command("campaign").commands["list"])


def _guarded(command: click.Command) -> bool:
    """The RBAC guard's flag on the command's callback or on a function it wraps (Typer wraps)."""
    fn = command.callback
    while fn is not None:
        if getattr(fn, "__liebian_guarded__", False):
            return True
        fn = getattr(fn, "__wrapped__", None)
    return False


def test_every_command_of_every_domain_is_reachable_and_guarded() -> None:
    paths = dict(iter_commands(cli.app))
    assert "serve" in paths and "demo" in paths and "campaign list" in paths and "auth audit verify" in paths
    unguarded = sorted(path for path, command in paths.items() if not _guarded(command))
    assert not unguarded, f"commands without the RBAC guard: {unguarded}"


def test_unknown_command_suggests_a_lazy_one() -> None:
    result = CliRunner().invoke(cli.app, ["campain"])
    assert result.exit_code == 2 and "campaign" in result.output
