"""KTO data: unpaired ``{"prompt", "completion", "label"}`` rows, checked with ``file:line`` errors, encoded, batched.

A row's prompt and completion are text, or chat messages as in preference data (a chat prompt's completion may be a
string: one assistant turn). ``label`` is ``true`` (desirable) or ``false`` (undesirable); in a CSV file, the words
``true`` / ``false``. A preference pair ``{"prompt", "chosen", "rejected"}`` is read as two rows, chosen labelled true
and rejected false, as trl does.

A batch holds the rows in trl's layout plus the mismatched rows the KL reference point is estimated from: row ``i``'s
prompt with row ``i-1``'s completion (the first takes the last's), ``KL_input_ids`` / ``KL_attention_mask`` /
``KL_completion_mask``, and ``label``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.data.preference import Text, parse_answer, parse_preference, parse_prompt
from llmctl.errors import DataError

FIELDS = "prompt, completion, label (true or false)"


@dataclass(frozen=True)
class KtoExample:
    """One labelled completion: the prompt, the completion, whether it is desirable, and where it came from."""

    prompt: Text
    completion: Text
    label: bool
    source: str = ""


@dataclass(frozen=True)
class EncodedKto:
    """Token ids of a KTO row: the prompt, the completion and its label."""

    prompt_ids: list[int]
    completion_ids: list[int]
    label: bool


def parse_label(value: Any, where: str, text_labels: bool = False) -> bool:
    """A row's label: a JSON boolean (in a CSV file, the word true or false); anything else is a one-line error."""
    if isinstance(value, bool):
        return value
    if text_labels and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise DataError(f"{where}: field 'label' must be true or false, got {json.dumps(value)[:40]}")


def parse_kto(record: Any, where: str, text_labels: bool = False) -> list[KtoExample]:
    """The KTO rows of one record (two for a preference pair); ``where`` is ``file:line``."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object with fields {FIELDS}")
    if "completion" not in record and "chosen" in record and "rejected" in record:
        pair = parse_preference(record, where)
        return [KtoExample(pair.prompt, pair.chosen, True, where), KtoExample(pair.prompt, pair.rejected, False, where)]
    for field in ("prompt", "completion", "label"):
        if field not in record:
            raise DataError(f"{where}: missing field {field!r} (KTO data needs {FIELDS})")
    prompt = parse_prompt(record["prompt"], where)
    completion = parse_answer(record["completion"], where, "completion", isinstance(prompt, list))
    return [KtoExample(prompt, completion, parse_label(record["label"], where, text_labels), where)]


def read_kto(path: str | Path) -> list[KtoExample]:
    """Every KTO row of a JSONL, JSON or CSV file; the first malformed record raises a one-line DataError."""
    from llmctl.data.records import read_records

    text_labels = Path(path).suffix.lower() == ".csv"
    return [example for record in read_records(path) for example in parse_kto(record.values, record.where,
                                                                              text_labels)]


def encode_kto(example: KtoExample, tokenizer: Any, max_length: int | None = None,
               chat_template: str | None = None) -> EncodedKto:
    """Token ids of one row (plain-text completions end with EOS; long prompts lose their start first)."""
    from llmctl.data.preference import encode_completions

    prompt_ids, (completion_ids,) = encode_completions(example.prompt, [example.completion], tokenizer, max_length,
                                                       chat_template)
    return EncodedKto(prompt_ids, completion_ids, example.label)


def load_kto_data(settings: Any, context: Any) -> Any:
    """Encoded KTO rows split into training and validation (an ``SftData`` of :class:`EncodedKto`)."""
    from llmctl.data.dataset import SftData, split_validation
    from llmctl.data.encode import chat_template_for

    template = chat_template_for(context.tokenizer, getattr(context.family, "chat_template", None))

    def encoded(path: Any) -> list[EncodedKto]:
        return [encode_kto(e, context.tokenizer, settings["max_length"], template) for e in read_kto(path)]

    rows = encoded(context.data_path)
    if settings["val_data"]:
        train, validation = rows, encoded(settings["val_data"])
    else:
        train, validation = split_validation(rows, settings["val_split"], settings["seed"])
    return SftData(train, validation, "kto", len(rows))


def count_kto(settings: Any, context: Any) -> int:
    """Check the data file (and ``val_data``) without a tokenizer, for ``--dry-run``; the number of rows."""
    if settings["val_data"]:
        read_kto(settings["val_data"])
    return len(read_kto(context.data_path))


def collate_kto(items: Sequence[EncodedKto], pad_token_id: int, max_length: int | None = None) -> dict[str, Any]:
    """Rows, their mismatched KL rows (row ``i``'s prompt, row ``i-1``'s completion) and labels, padded."""
    import torch

    from llmctl.data.preference import collate_rows

    rows = [(item.prompt_ids, item.completion_ids) for item in items]
    mismatched = []
    for index, item in enumerate(items):
        completion = items[index - 1].completion_ids
        if max_length is not None:
            completion = completion[:max(max_length - len(item.prompt_ids), 0)]
        mismatched.append((item.prompt_ids, completion))
    batch = collate_rows(rows, pad_token_id)
    batch.update({f"KL_{key}": value for key, value in collate_rows(mismatched, pad_token_id).items()})
    batch["label"] = torch.tensor([item.label for item in items], dtype=torch.bool)
    return batch
