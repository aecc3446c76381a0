"""Progress and error output for every layer: the rich consoles, plain JSON output and the internal-error line.

The bottom of the layering: the CLI verbs and the core (train loop, workers, converters) both print through this
module, so nothing below the CLI needs to import ``llmctl.cli``. It imports rich only, never torch.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from rich.console import Console

# Rich draws at 80 columns when output is not a terminal (make, CI logs, `| tee`): tables then truncate their
# numbers. A pipe has no width, so give it room unless the user set COLUMNS.
PIPE_WIDTH = 140
MAX_DETAIL = 300  # characters of an unexpected exception's message shown on the one line


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


def internal_error_line(error: BaseException) -> str:
    """The one line for an exception no layer turned into an LlmctlError: a bug in llmctl, said to be one.

    User errors (bad files, settings, resources) are LlmctlErrors raised where a library fails; whatever reaches
    here is unexpected, so the line asks for a report and points at ``--debug``. The message is cut to its first
    line and the exception's class name is left out (it means nothing to a user; the traceback has it).
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = lines[0] if lines else "no details"
    if len(lines) > 1 and detail.endswith(":"):  # a heading line ("Validation error for field 'x':"): add the reason
        detail = f"{detail} {lines[1]}"
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL - 1] + "…"
    return (f"error: internal error (a bug in llmctl — please report it): {detail}; run again with --debug for the "
            "traceback")
