"""Shared console objects and small printing helpers for the verbs."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout (plain, for scripts)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def complete_model(incomplete: str) -> list[str]:
    """Shell completion for model names (reads the registry only; never imports torch)."""
    from llmctl.plugins import get_registry

    return [name for name in get_registry().model_names() if name.startswith(incomplete)]
