"""Finding the peft adapter of a fine-tuning run: the one rule ``chat --adapter``, ``convert --merge`` and
``benchmark`` share, so every command applies the same adapter from the same run."""

from __future__ import annotations

import re
from pathlib import Path

from llmctl.errors import DataError

ADAPTER_CONFIG = "adapter_config.json"
# where a run's finished adapter sits, in the order they are tried: llmctl writes it into the run folder itself
RESULT_FOLDERS = (".", "adapter", "final")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def is_adapter_dir(path: Path) -> bool:
    """True for a folder holding a peft adapter (its ``adapter_config.json``)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def checkpoint_order(folder: Path) -> tuple[int, float]:
    """Sort key of an adapter folder among a run's checkpoints: the last number in its name (the step:
    ``checkpoint-1000``, ``step-000200``; -1 without one), then its modification time."""
    match = _LAST_NUMBER.search(folder.name)
    return (int(match.group(1)) if match else -1, folder.stat().st_mtime)


def find_adapter_dir(run: str | Path) -> Path:
    """The folder of a run's peft adapter: its finished result, else its latest checkpoint that holds an adapter.

    The finished result is looked for in the run folder itself (where ``llmctl finetune`` writes it), then in its
    ``adapter/`` and ``final/`` sub-folders. Without one, every folder below the run that holds an
    ``adapter_config.json`` is a checkpoint, and the latest wins: the highest step number in the folder's name
    (numbers compared as numbers, so ``checkpoint-1000`` comes after ``checkpoint-200``), then the newest. Hidden
    folders (``.tmp-…``, written before being renamed into place) are never picked.
    """
    run = Path(run)
    for name in RESULT_FOLDERS:
        if is_adapter_dir(run / name):
            return run if name == "." else run / name
    checkpoints = [config.parent for config in run.rglob(ADAPTER_CONFIG) if config.is_file()
                   and not any(part.startswith(".") for part in config.relative_to(run).parts)]  # half-written
    if not checkpoints:
        raise DataError(f"{run} holds no peft adapter ({ADAPTER_CONFIG} not found); was it a LoRA/DoRA run?")
    return max(checkpoints, key=checkpoint_order)
