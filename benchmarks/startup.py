"""CLI start-up time next to `python -c pass`: the cost of the light commands a user runs most."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import Row, Section

COMMANDS = (("llmctl --help", ["--help"]), ("llmctl plugins", ["plugins"]), ("llmctl models", ["models"]))


def _median_seconds(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(repeats: int = 7) -> Section:
    """Median wall time of each light command and of the bare interpreter."""
    llmctl = str(Path(sys.executable).with_name("llmctl"))
    _median_seconds([llmctl, "--help"], 1)  # warm the file cache
    baseline = _median_seconds([sys.executable, "-c", "pass"], repeats)
    torch_import = _median_seconds([sys.executable, "-c", "import torch"], 3)
    section = Section("CLI start-up", f"Median of {repeats} runs of each command (wall time, ms). Lower is better; "
                                      "the ratio is how many times the bare interpreter's start-up the command takes.")
    for label, argv in COMMANDS:
        seconds = _median_seconds([llmctl, *argv], repeats)
        section.rows.append(Row(label, seconds * 1000, "ms", "`python -c pass`", baseline * 1000,
                                higher_is_better=False, note=f"{seconds / baseline:.1f}× the interpreter alone"))
    section.rows.append(Row("`python -c 'import torch'` (for scale)", torch_import * 1000, "ms", "`python -c pass`",
                            baseline * 1000, higher_is_better=False,
                            note="what every command would pay if it imported torch"))
    return section
