"""The `make bench` suite outside the wheel: every section it lists exists, and `python -m benchmarks` starts.

Running a section takes minutes (`make bench`); this only checks the suite is wired up after a move.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_suite_entry_names_a_function():
    """Each ``module:function`` of the suite imports and names a callable."""
    from benchmarks.__main__ import SUITE

    assert SUITE
    for entry in SUITE:
        module_name, _, function_name = entry.partition(":")
        assert module_name.startswith("benchmarks."), entry
        assert callable(getattr(importlib.import_module(module_name), function_name)), entry


def test_the_suite_starts_from_the_repository_root():
    """``python -m benchmarks --help`` (what `make bench` runs, less the work) and its default output path."""
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "--only" in done.stdout
    from benchmarks import ROOT as suite_root

    assert suite_root == ROOT and (suite_root / "docs" / "benchmarks.md").is_file()
