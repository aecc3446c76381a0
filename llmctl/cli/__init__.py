"""The ``llmctl`` command line: a typer app built from core verbs plus whatever plugins add."""

from __future__ import annotations

import os
import sys

from llmctl.errors import LlmctlError

# Libraries that log set-up chatter (optional kernels they could not load, deprecations) on every run.
NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "torch._dynamo", "transformers", "accelerate", "peft",
                 "huggingface_hub", "datasets", "lm-eval", "lm_eval")


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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning user errors into one line and an exit code."""
    from llmctl.cli.app import build_app

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("LLMCTL_DEBUG"))
    if not debug:
        quiet_third_party_libraries()
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
