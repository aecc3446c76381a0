"""Shared console objects and small printing helpers for the verbs."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from rich.console import Console

# Rich draws at 80 columns when output is not a terminal (make, CI logs, `| tee`): tables then truncate their
# numbers. A pipe has no width, so give it room unless the user set COLUMNS.
PIPE_WIDTH = 140


def _width_for(stream: TextIO) -> int | None:
    """None (rich measures the terminal) for a terminal or when COLUMNS is set; PIPE_WIDTH otherwise."""
    if "COLUMNS" in os.environ or stream.isatty():
        return None
    return PIPE_WIDTH


console = Console(width=_width_for(sys.stdout))
err_console = Console(stderr=True, width=_width_for(sys.stderr))


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout (plain, for scripts)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def complete_model(incomplete: str) -> list[str]:
    """Shell completion for model names (reads the registry only; never imports torch)."""
    from llmctl.plugins import get_registry

    return [name for name in get_registry().model_names() if name.startswith(incomplete)]
