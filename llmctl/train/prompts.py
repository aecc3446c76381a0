"""Prompt data of preference and RL methods: preference pairs, and prompts rendered with the chat template.

Public: DPO, reward models, PPO and rejection sampling read their data here, so a record means the same to all of
them. Errors name the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmctl.errors import DataError


def load_preference_data(settings: Any, context: Any) -> Any:
    """Encoded preference pairs split into training and validation (an ``SftData`` of ``EncodedPair``)."""
    from llmctl.data.dataset import SftData, split_validation
    from llmctl.data.encode import chat_template_for
    from llmctl.data.preference import encode_preference, read_preferences

    examples = read_preferences(context.data_path)
    template = chat_template_for(context.tokenizer, getattr(context.family, "chat_template", None))
    pairs = [encode_preference(e, context.tokenizer, settings["max_length"], template) for e in examples]
    if settings["val_data"]:
        validation = [encode_preference(e, context.tokenizer, settings["max_length"], template)
                      for e in read_preferences(settings["val_data"])]
        train = pairs
    else:
        train, validation = split_validation(pairs, settings["val_split"], settings["seed"])
    return SftData(train, validation, "preference", len(examples))


def prompt_of(values: dict[str, Any], where: str) -> Any:
    """The prompt of a record: ``prompt``; ``messages`` without the final assistant turn; or alpaca fields."""
    if "prompt" in values:
        prompt = values["prompt"]
        if isinstance(prompt, str) and prompt.strip() or isinstance(prompt, list) and prompt:
            return prompt
        raise DataError(f"{where}: field 'prompt' must be a non-empty string or list of messages")
    if isinstance(values.get("messages"), list) and values["messages"]:
        messages = list(values["messages"])
        if messages[-1].get("role") == "assistant":
            messages = messages[:-1]
        if messages:
            return messages
    if isinstance(values.get("instruction"), str):
        extra = values.get("input") or ""
        return values["instruction"] + (f"\n\n{extra}" if extra else "")
    raise DataError(f"{where}: missing field 'prompt' (or 'messages' / 'instruction')")


def prompt_token_ids(prompt: Any, tokenizer: Any, template: str) -> list[int]:
    """A prompt rendered as a user turn (or its messages) with the chat template and the generation prompt."""
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, chat_template=template)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class PromptRecord:
    """A prompt of an RL data file: the prompt, its token ids, the record's other columns and ``file:line``."""

    prompt: Any
    ids: list[int]
    columns: dict[str, Any] = field(default_factory=dict)
    where: str = ""


def load_prompt_records(settings: Any, context: Any) -> list[PromptRecord]:
    """Every record of the data file as a :class:`PromptRecord` (prompts longer than max_length keep their end).

    ``columns`` holds every field but ``prompt``: an ``answer`` a reward compares against, say (a reward set checks
    that its columns are there with ``RewardSet.check_data``).
    """
    from llmctl.data.encode import chat_template_for
    from llmctl.data.records import read_records

    template = chat_template_for(context.tokenizer, getattr(context.family, "chat_template", None))
    records = []
    for record in read_records(context.data_path):
        prompt = prompt_of(record.values, record.where)
        ids = prompt_token_ids(prompt, context.tokenizer, template)
        columns = {k: v for k, v in record.values.items() if k != "prompt"}
        records.append(PromptRecord(prompt, ids[-settings["max_length"]:], columns, record.where))
    return records


def load_prompts(settings: Any, context: Any) -> list[tuple[Any, list[int]]]:
    """(prompt, token ids) for every record of the data file (prompts longer than max_length keep their end)."""
    return [(record.prompt, record.ids) for record in load_prompt_records(settings, context)]
