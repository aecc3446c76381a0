"""Will the model fit? Estimated from its config (or GGUF size) before any weight is loaded."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from llmctl.errors import ResourceError


def available_memory() -> int | None:
    """Bytes of memory available to a new process (``MemAvailable``), or None when unknown."""
    override = os.environ.get("LLMCTL_AVAILABLE_MEMORY")
    if override:
        return int(override)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def needed_bytes_from_config(config: dict[str, Any], dtype: str, context: int) -> int:
    """Weights at ``dtype`` plus a KV cache for ``context`` tokens, with runtime overhead."""
    from llmctl.models.memory import inference_bytes
    from llmctl.models.params import count_parameters
    from llmctl.plugins import get_registry

    family = get_registry().family_for_model_type(config.get("model_type", ""))
    return inference_bytes(count_parameters(config, family), config, dtype, context)


def needed_bytes_for_gguf(path: Path, config: dict[str, Any] | None, context: int) -> int:
    """The GGUF file (llama.cpp maps it whole) plus a KV cache for ``context`` tokens."""
    from llmctl.models.memory import OVERHEAD, kv_cache_bytes

    return int((path.stat().st_size + (kv_cache_bytes(config, context) if config else 0)) * OVERHEAD)


def check_fits(name: str, needed: int, what: str) -> None:
    """Raise a one-line ResourceError when ``needed`` bytes exceed the memory available now."""
    from llmctl.models.memory import human_bytes

    free = available_memory()
    if free is not None and needed > free:
        raise ResourceError(f"{name} needs about {human_bytes(needed)} ({what}) but only {human_bytes(free)} "
                            f"is free; try a smaller or quantized model, or a shorter --context")


def read_config(path: Path) -> dict[str, Any] | None:
    """``config.json`` of a model directory, if present."""
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
