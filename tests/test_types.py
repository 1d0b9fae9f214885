"""The type checker is part of the suite: CI runs only `make test`, so mypy runs here.

mypy reads its settings from pyproject.toml (`[tool.mypy]`: the files, the per-module strictness,
the libraries without stubs) and keeps its incremental cache in `.mypy_cache`, so a second run only
rechecks the modules that changed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (it comes with the `test` extra: pip install -e '.[test]')",
)
def test_mypy_reports_no_errors() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-color-output"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"mypy found errors in src/liebian:\n{(proc.stdout + proc.stderr).strip()}", pytrace=False
        )
    assert "Success" in proc.stdout, proc.stdout
