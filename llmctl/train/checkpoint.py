"""Checkpoints written atomically (temporary folder, then rename): trainable tensors, optimizer, schedule, RNG, step,
and what the method keeps between steps (``TrainingMethod.state``).

A checkpoint holds everything needed to continue exactly: resuming from it gives the same per-step losses as a run
that never stopped. Tensors are safetensors; optimizer and RNG state are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoints_dir(run: Path) -> Path:
    """Where a run keeps its checkpoints."""
    return run / "checkpoints"


def rng_state() -> dict[str, Any]:
    """This process's random number generator states."""
    import torch

    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put random number generators back where they were."""
    import torch

    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run: Path, step: int, tensors: dict[str, Any], optimizer: Any, scheduler: Any,
                    rank: int = 0, world_size: int = 1, barrier: Any = None, keep: int = 2,
                    rng: dict[str, Any] | None = None, method_state: dict[str, Any] | None = None) -> Path:
    """Write checkpoint ``step`` of ``run``; every process adds its RNG state (and the method's, when it keeps one),
    process 0 publishes it."""
    import torch
    from safetensors.torch import save_file

    root = checkpoints_dir(run)
    final = root / f"step-{step:06d}"
    temporary = root / f".tmp-step-{step:06d}"
    if rank == 0:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(cpu, str(temporary / "trainable.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                    "world_size": world_size}, temporary / "state.pt")
    if barrier:
        barrier()
    torch.save(rng or rng_state(), temporary / f"rng-{rank}.pt")
    if method_state:
        torch.save(method_state, temporary / f"method-{rank}.pt")
    if barrier:
        barrier()
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
        for old in list_checkpoints(run)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    if barrier:
        barrier()
    return final


def list_checkpoints(run: Path) -> list[Path]:
    """Complete checkpoints of ``run``, oldest first."""
    root = checkpoints_dir(run)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def checkpoint_step(path: Path) -> int:
    """The step number of a checkpoint folder."""
    match = STEP_DIR.match(path.name)
    return int(match.group(1)) if match else 0


def load_checkpoint(path: Path, rank: int = 0) -> dict[str, Any]:
    """Tensors, optimizer/scheduler state, step, and this process's RNG and method state from a checkpoint folder."""
    import torch
    from safetensors.torch import load_file

    state = torch.load(path / "state.pt", weights_only=True)
    rng_file = path / f"rng-{rank}.pt"
    state["rng"] = torch.load(rng_file, weights_only=True) if rng_file.is_file() else None
    method_file = path / f"method-{rank}.pt"
    state["method"] = torch.load(method_file, weights_only=True) if method_file.is_file() else None
    state["tensors"] = load_file(str(path / "trainable.safetensors"))
    return state
