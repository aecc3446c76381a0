"""The ``llmctl`` command line: a typer app built from core verbs plus whatever plugins add."""

from __future__ import annotations

import os
import sys

from llmctl.errors import LlmctlError


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning user errors into one line and an exit code."""
    from llmctl.cli.app import build_app

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("LLMCTL_DEBUG"))
    try:
        app = build_app()
        app(args=args, prog_name="llmctl")
    except LlmctlError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # anything else is our bug: still one line unless --debug
        if debug:
            raise
        print(f"error: {type(error).__name__}: {error} (run again with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)
