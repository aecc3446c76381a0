"""From a data file to encoded training and validation examples (or packed rows)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.data.batching import pack_examples
from llmctl.data.encode import EncodedExample, chat_template_for, encode_example
from llmctl.data.formats import SftExample, parse_examples
from llmctl.data.records import read_records
from llmctl.errors import DataError


@dataclass
class SftData:
    """Encoded training and validation items, with counts for reports."""

    train: list[Any]
    validation: list[Any]
    data_format: str
    examples: int
    dropped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def train_tokens(self) -> int:
        """Tokens (all, not only trained) in the training items."""
        return sum(_size(item) for item in self.train)


def _size(item: Any) -> int:
    if isinstance(item, EncodedExample):
        return len(item.input_ids)
    return sum(len(e.input_ids) for e in item)


def load_examples(path: str | Path, data_format: str = "auto") -> tuple[list[SftExample], str]:
    """The examples of a data file, validated, and their format."""
    return parse_examples(read_records(path), data_format)


def split_validation(items: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A seeded random split: (train, validation); at least one validation item when ``fraction > 0``."""
    if fraction <= 0 or len(items) < 2:
        return items, []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    count = min(len(items) - 1, max(1, round(len(items) * fraction)))
    held = set(order[:count])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


def load_sft_data(path: str | Path, tokenizer: Any, *, data_format: str = "auto", max_length: int = 512,
                  val_split: float = 0.1, val_data: str | Path | None = None, packing: bool = False,
                  train_on_prompt: bool = False, family_template: str | None = None, seed: int = 0) -> SftData:
    """Read, validate, encode, split and optionally pack a data file for supervised fine-tuning."""
    examples, chosen = load_examples(path, data_format)
    template = chat_template_for(tokenizer, family_template)

    def encode(items: list[SftExample]) -> tuple[list[EncodedExample], int]:
        encoded = [encode_example(e, tokenizer, template, max_length, train_on_prompt) for e in items]
        kept = [e for e in encoded if e.trained_tokens > 0]
        return kept, len(encoded) - len(kept)

    train, dropped = encode(examples)
    if val_data:
        validation, more = encode(load_examples(val_data, data_format)[0])
        dropped += more
    else:
        train, validation = split_validation(train, val_split, seed)
    if not train:
        raise DataError(f"{path}: no example keeps an answer token within max_length={max_length}")
    notes = [f"{dropped} example(s) skipped: no answer token left within max_length={max_length}"] if dropped else []
    if packing:
        train = pack_examples(train, max_length)
        validation = pack_examples(validation, max_length)
    return SftData(train, validation, chosen, len(examples), dropped, notes)
