"""Data order: a seeded permutation per epoch, read as one endless stream, so step ``s`` always gets the same items.

Resuming needs only the step number; every process takes its own slice of each step's global batch, so a run with
``N`` processes sees exactly the items of a one-process run with the same global batch.
"""

from __future__ import annotations

import functools
import random


@functools.lru_cache(maxsize=8)
def _permutation(size: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(size))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return tuple(order)


def step_items(step: int, size: int, global_batch: int, seed: int) -> list[int]:
    """Indices of the items of optimizer step ``step`` (0-based), across every process and micro-batch."""
    positions = range(step * global_batch, (step + 1) * global_batch)
    return [_permutation(size, seed, p // size)[p % size] for p in positions]


def micro_batch_items(step: int, size: int, batch_size: int, grad_accum: int, world_size: int, rank: int,
                      seed: int) -> list[list[int]]:
    """The micro-batches (lists of indices) process ``rank`` runs in step ``step``."""
    items = step_items(step, size, batch_size * grad_accum * world_size, seed)
    return [items[(a * world_size + rank) * batch_size:(a * world_size + rank + 1) * batch_size]
            for a in range(grad_accum)]


def epochs_covered(steps: int, size: int, global_batch: int) -> float:
    """How many passes over the data ``steps`` steps make."""
    return steps * global_batch / max(1, size)
