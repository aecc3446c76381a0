"""LiPO data: ``{"prompt", "responses": [...], "scores": [...]}`` lists, checked with ``file:line`` errors.

The prompt and each response are text, or chat messages as in preference data (a chat prompt's response may be a
string: one assistant turn). ``scores`` holds one number per response, higher is better (the paper's labels ψ);
responses with equal scores form no pair. A batch holds every list's responses as rows, list after list, with
``scores`` and ``response_mask`` shaped ``[lists, longest list]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.data.preference import Text, parse_answer, parse_prompt
from llmctl.errors import DataError

FIELDS = "prompt, responses (a list), scores (one number per response)"


@dataclass(frozen=True)
class LipoExample:
    """One prompt with a list of responses and their scores (higher is better), and where it came from."""

    prompt: Text
    responses: tuple[Text, ...]
    scores: tuple[float, ...]
    source: str = ""


@dataclass(frozen=True)
class EncodedList:
    """Token ids of a LiPO list: the prompt, each response, and the responses' scores."""

    prompt_ids: list[int]
    response_ids: tuple[list[int], ...]
    scores: tuple[float, ...]


def _score(value: Any, where: str, index: int) -> float:
    """One score: a finite JSON number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{where}: field 'scores' value {index} must be a finite number, got "
                        f"{json.dumps(value)[:40]}")
    return float(value)


def parse_lipo(record: Any, where: str) -> LipoExample:
    """Validate one record and return it as a :class:`LipoExample` (``where`` is ``file:line``)."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object with fields {FIELDS}")
    for field in ("prompt", "responses", "scores"):
        if field not in record:
            raise DataError(f"{where}: missing field {field!r} (LiPO data needs {FIELDS})")
    prompt = parse_prompt(record["prompt"], where)
    responses, scores = record["responses"], record["scores"]
    if not isinstance(responses, list):
        raise DataError(f"{where}: field 'responses' must be a list of responses")
    if len(responses) < 2:
        raise DataError(f"{where}: field 'responses' must hold at least 2 responses to rank, got {len(responses)}")
    if not isinstance(scores, list):
        raise DataError(f"{where}: field 'scores' must be a list of numbers, one per response")
    if len(scores) != len(responses):
        raise DataError(f"{where}: field 'scores' has {len(scores)} values for {len(responses)} responses")
    parsed = tuple(parse_answer(r, where, f"responses[{i}]", isinstance(prompt, list)) for i, r in enumerate(responses))
    values = tuple(_score(value, where, index) for index, value in enumerate(scores))
    if len(set(values)) == 1:
        raise DataError(f"{where}: every score is {values[0]:g}, so the list carries no preference")
    return LipoExample(prompt, parsed, values, where)


def read_lipo(path: str | Path) -> list[LipoExample]:
    """Every list of a JSONL or JSON file; the first malformed record raises a one-line DataError."""
    from llmctl.data.records import read_records

    return [parse_lipo(record.values, record.where) for record in read_records(path)]


def cap_list(example: LipoExample, size: int) -> LipoExample:
    """At most ``size`` responses: the best, the worst and evenly spaced ranks between (in their file order)."""
    count = len(example.responses)
    if count <= size:
        return example
    ranked = sorted(range(count), key=lambda i: -example.scores[i])
    kept = sorted({ranked[round(k * (count - 1) / (size - 1))] for k in range(size)})
    return LipoExample(example.prompt, tuple(example.responses[i] for i in kept),
                       tuple(example.scores[i] for i in kept), example.source)


def encode_lipo(example: LipoExample, tokenizer: Any, max_length: int | None = None,
                chat_template: str | None = None) -> EncodedList:
    """Token ids of one list (plain-text responses end with EOS; long prompts lose their start first)."""
    from llmctl.data.preference import encode_completions

    prompt_ids, response_ids = encode_completions(example.prompt, example.responses, tokenizer, max_length,
                                                  chat_template)
    return EncodedList(prompt_ids, tuple(response_ids), example.scores)


def load_lipo_data(settings: Any, context: Any) -> Any:
    """Encoded lists (capped at ``list_size``) split into training and validation (an ``SftData``)."""
    from llmctl.data.dataset import SftData, split_validation
    from llmctl.data.encode import chat_template_for

    template = chat_template_for(context.tokenizer, getattr(context.family, "chat_template", None))

    def encoded(path: Any) -> list[EncodedList]:
        return [encode_lipo(cap_list(e, settings["list_size"]), context.tokenizer, settings["max_length"], template)
                for e in read_lipo(path)]

    lists = encoded(context.data_path)
    if settings["val_data"]:
        train, validation = lists, encoded(settings["val_data"])
    else:
        train, validation = split_validation(lists, settings["val_split"], settings["seed"])
    return SftData(train, validation, "lipo", len(lists))


def count_lipo(settings: Any, context: Any) -> int:
    """Check the data file (and ``val_data``) without a tokenizer, for ``--dry-run``; the number of lists."""
    if settings["val_data"]:
        read_lipo(settings["val_data"])
    return len(read_lipo(context.data_path))


def collate_lipo(items: Sequence[EncodedList], pad_token_id: int) -> dict[str, Any]:
    """Every response of every list as a row (list after list), with ``scores`` and ``response_mask`` per list."""
    import torch

    from llmctl.data.preference import collate_rows

    rows = [(item.prompt_ids, response) for item in items for response in item.response_ids]
    batch = collate_rows(rows, pad_token_id)
    longest = max(len(item.scores) for item in items)
    scores = torch.zeros((len(items), longest), dtype=torch.float32)
    mask = torch.zeros((len(items), longest), dtype=torch.bool)
    for index, item in enumerate(items):
        scores[index, :len(item.scores)] = torch.tensor(item.scores, dtype=torch.float32)
        mask[index, :len(item.scores)] = True
    batch.update({"scores": scores, "response_mask": mask})
    return batch
