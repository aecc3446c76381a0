"""Running the real ``llmctl`` console script in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LLMCTL = str(Path(sys.executable).with_name("llmctl"))


def run_llmctl(*args: str, env: dict[str, str] | None = None, input: str | None = None,
               timeout: float = 600, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run ``llmctl ARGS`` and capture its output (text)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([LLMCTL, *args], capture_output=True, text=True, env=full_env, input=input,
                          timeout=timeout, cwd=cwd)
