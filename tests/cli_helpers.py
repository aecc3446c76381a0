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


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``llmctl ARGS`` in this process (no start-up cost): ``(exit code, stdout, stderr)``."""
    from llmctl.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err
