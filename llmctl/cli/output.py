"""What the verbs print with: the consoles and JSON output of :mod:`llmctl.console`, plus shell completion."""

from __future__ import annotations

from llmctl.console import PIPE_WIDTH, console, err_console, print_json

__all__ = ["PIPE_WIDTH", "complete_model", "console", "err_console", "print_json"]


def complete_model(incomplete: str) -> list[str]:
    """Shell completion for model names (reads the registry only; never imports torch)."""
    from llmctl.plugins import get_registry

    return [name for name in get_registry().model_names() if name.startswith(incomplete)]
