"""The ``llmctl`` command line: a typer app built from core verbs plus whatever plugins add."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

from llmctl.console import internal_error_line
from llmctl.errors import LlmctlError

# Libraries that log set-up chatter (optional kernels they could not load, deprecations) on every run.
NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "torch._dynamo", "transformers", "accelerate", "peft",
                 "huggingface_hub", "datasets", "lm-eval", "lm_eval")

INTERNAL_ERROR_EXIT = 1  # as before: scripts and recipes that check for failure see the same code


def quiet_third_party_libraries() -> None:
    """Keep third-party warnings off the user's terminal (``--debug`` shows them); no heavy import happens here."""
    import logging
    import warnings

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # transformers' and huggingface_hub's tqdm bars ("Loading weights ..."); llmctl draws its own progress.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*TypedStorage is deprecated.*")


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from typer's bundled click and from click itself, where each is installed."""
    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


USAGE_ERRORS = _click_classes("ClickException")
ABORTS = _click_classes("Abort")


def usage_error_line(error: BaseException) -> str:
    """One line for a command-line usage error (unknown flag, bad value), pointing at the command's help."""
    message = " ".join(error.format_message().split()) if hasattr(error, "format_message") else str(error)
    context = getattr(error, "ctx", None)
    hint = f" (see `{context.command_path} --help`)" if context is not None else ""
    return f"error: {message}{hint}"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning user errors into one line and an exit code."""
    from llmctl.cli.app import build_app

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("LLMCTL_DEBUG"))
    if not debug:
        quiet_third_party_libraries()
    try:
        app = build_app()
        code = app(args=args, prog_name="llmctl", standalone_mode=False)
    except USAGE_ERRORS as error:  # a bad flag or value: one line, like every other user error
        if debug:
            raise
        if error.format_message().strip():  # bare `llmctl` shows the help and has nothing to add
            print(usage_error_line(error), file=sys.stderr)
        sys.exit(getattr(error, "exit_code", 2))
    except ABORTS:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
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
        print(internal_error_line(error), file=sys.stderr)
        sys.exit(INTERNAL_ERROR_EXIT)
    if isinstance(code, int) and code:
        sys.exit(code)
