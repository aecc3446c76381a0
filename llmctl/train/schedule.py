"""Learning-rate schedules: linear warm-up, then cosine, linear or constant decay."""

from __future__ import annotations

import math
from typing import Any


def lr_factor(step: int, max_steps: int, warmup_steps: int, schedule: str, min_ratio: float = 0.0) -> float:
    """The multiplier of the peak learning rate for optimizer step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
    return min_ratio + (1.0 - min_ratio) * shape


def make_scheduler(optimizer: Any, settings: Any) -> Any:
    """A ``LambdaLR`` following :func:`lr_factor` for these settings."""
    from torch.optim.lr_scheduler import LambdaLR

    max_steps = settings["max_steps"]
    warmup = int(round(settings["warmup_ratio"] * max_steps))
    return LambdaLR(optimizer, lambda step: lr_factor(step, max_steps, warmup, settings["schedule"],
                                                      settings["min_lr_ratio"]))
