"""Batches of encoded examples: padded to the longest, or packed into fixed-length rows.

Packed rows carry ``position_ids`` that restart at 0 for every example and no ``attention_mask``: transformers then
builds a block-diagonal causal mask from the position ids (sdpa, eager and flash attention alike), so packed examples
never attend to each other. ``tests/test_data.py`` checks that each example's logits equal those it gets alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmctl.data.encode import IGNORE, EncodedExample

Row = tuple[EncodedExample, ...]


def pack_examples(examples: Sequence[EncodedExample], max_length: int) -> list[Row]:
    """Greedily fill rows of at most ``max_length`` tokens with whole examples, in order (first fit)."""
    rows: list[list[EncodedExample]] = []
    room: list[int] = []
    for example in examples:
        size = len(example.input_ids)
        for index, left in enumerate(room):
            if size <= left:
                rows[index].append(example)
                room[index] -= size
                break
        else:
            rows.append([example])
            room.append(max_length - size)
    return [tuple(row) for row in rows]


def collate_padded(examples: Sequence[EncodedExample], pad_id: int) -> dict[str, Any]:
    """A right-padded batch: ``input_ids``, ``attention_mask``, ``labels`` (``-100`` on padding), ``_tokens``.

    Keys starting with ``_`` are bookkeeping (``_tokens``: real tokens in the batch), not model inputs.
    """
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        size = len(example.input_ids)
        ids[row, :size] = torch.tensor(example.input_ids)
        labels[row, :size] = torch.tensor(example.labels)
        mask[row, :size] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "_tokens": int(mask.sum())}


def collate_packed(rows: Sequence[Row], pad_id: int) -> dict[str, Any]:
    """A batch of packed rows: ``input_ids``, ``labels`` and ``position_ids`` restarting at each example."""
    import torch

    width = max(sum(len(e.input_ids) for e in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        start = 0
        for example in row:
            size = len(example.input_ids)
            ids[index, start:start + size] = torch.tensor(example.input_ids)
            labels[index, start:start + size] = torch.tensor(example.labels)
            positions[index, start:start + size] = torch.arange(size)
            start += size
        positions[index, start:] = torch.arange(width - start)  # padding forms its own, ignored sequence
    tokens = sum(len(e.input_ids) for row in rows for e in row)
    return {"input_ids": ids, "labels": labels, "position_ids": positions, "_tokens": tokens}


def collate(items: Sequence[Any], pad_id: int) -> dict[str, Any]:
    """Collate examples (padded) or packed rows (tuples of examples)."""
    if items and isinstance(items[0], tuple) and not isinstance(items[0], EncodedExample):
        return collate_packed(items, pad_id)
    return collate_padded(items, pad_id)


def trained_token_count(batch: dict[str, Any]) -> int:
    """Tokens that carry loss after the causal shift."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())
