"""Preference data: prompt / chosen / rejected triples, as plain text or chat messages, with file:line errors.

Files are read by :mod:`llmctl.data.records` (``.jsonl``, ``.json`` list, ``.csv``). Accepted shapes:

- ``{"prompt": "...", "chosen": "...", "rejected": "..."}`` — plain text;
- ``{"prompt": [messages], "chosen": [messages] | message | "...", "rejected": ...}`` — conversational;
- ``{"chosen": [messages], "rejected": [messages]}`` — the prompt is the messages both share before the last one.

Tokenized pairs are batched in trl's layout: ``[chosen_1 … chosen_B, rejected_1 … rejected_B]`` rows, right-padded,
with a ``completion_mask`` that is 1 on answer tokens only.

Methods whose records hold other answer shapes (KTO's one labelled completion, LiPO's scored list) read prompts and
answers with :func:`parse_prompt` / :func:`parse_answer`, encode with :func:`encode_completions` and batch with
:func:`collate_rows`, so a prompt means the same to every preference method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import DataError

Messages = list[dict[str, str]]
Text = str | Messages
PREFERENCE_FIELDS = ("prompt", "chosen", "rejected")
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class PreferenceExample:
    """One preference pair: the prompt, the preferred answer and the dispreferred one, with where it came from."""

    prompt: Text
    chosen: Text
    rejected: Text
    source: str = ""

    @property
    def conversational(self) -> bool:
        """True when the prompt is a list of chat messages."""
        return isinstance(self.prompt, list)


@dataclass(frozen=True)
class EncodedPair:
    """Token ids of a preference pair: the shared prompt and the two completions."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]


def _messages(value: Any, where: str, field: str) -> Messages:
    """Validate a message list (or a single message) and return it as a list."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not items:
        raise DataError(f"{where}: field {field!r} must be a non-empty string or list of messages")
    for index, message in enumerate(items):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise DataError(f"{where}: field {field!r} message {index} needs 'role' and 'content'")
        if message["role"] not in ROLES:
            raise DataError(f"{where}: field {field!r} message {index} has unknown role {message['role']!r} "
                            f"(expected one of {', '.join(ROLES)})")
        if not isinstance(message["content"], str):
            raise DataError(f"{where}: field {field!r} message {index} content must be a string")
    return [{"role": m["role"], "content": m["content"]} for m in items]


def _text(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field {field!r} must be a non-empty string")
    return value


def parse_prompt(value: Any, where: str, field: str = "prompt") -> Text:
    """A prompt: a non-empty string, or chat messages (a list, or one message) not all empty."""
    if isinstance(value, str):
        return _text(value, where, field)
    messages = _messages(value, where, field)
    if not any(message["content"].strip() for message in messages):
        raise DataError(f"{where}: field {field!r} has only empty messages")
    return messages


def parse_answer(value: Any, where: str, field: str, conversational: bool) -> Text:
    """An answer to a prompt: text for a plain prompt; for a chat prompt, messages (a string is one assistant turn)."""
    if not conversational:
        return _text(value, where, field)
    if isinstance(value, str):
        return [{"role": "assistant", "content": _text(value, where, field)}]
    return _messages(value, where, field)


def parse_preference(record: Any, where: str) -> PreferenceExample:
    """Validate one record and return it as a :class:`PreferenceExample` (``where`` is ``file:line``)."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object with fields prompt, chosen, rejected")
    for field in ("chosen", "rejected"):
        if field not in record:
            raise DataError(f"{where}: missing field {field!r} (preference data needs prompt, chosen, rejected)")
    chosen, rejected = record["chosen"], record["rejected"]
    if "prompt" not in record:
        if not (isinstance(chosen, list) and isinstance(rejected, list)):
            raise DataError(f"{where}: missing field 'prompt' (preference data needs prompt, chosen, rejected)")
        chosen, rejected = _messages(chosen, where, "chosen"), _messages(rejected, where, "rejected")
        if len(chosen) < 2 or chosen[:-1] != rejected[:-1]:
            raise DataError(f"{where}: without a 'prompt' field, chosen and rejected must share every message "
                            "but the last")
        example = PreferenceExample(chosen[:-1], chosen[-1:], rejected[-1:], where)
    else:
        prompt = parse_prompt(record["prompt"], where)
        conversational = isinstance(prompt, list)
        example = PreferenceExample(prompt, parse_answer(chosen, where, "chosen", conversational),
                                    parse_answer(rejected, where, "rejected", conversational), where)
    if example.chosen == example.rejected:
        raise DataError(f"{where}: 'chosen' and 'rejected' are identical, so the pair carries no preference")
    return example


def read_preferences(path: str | Path) -> list[PreferenceExample]:
    """Every preference pair in a JSONL, JSON or CSV file; the first malformed record raises a one-line DataError."""
    from llmctl.data.records import read_records

    return [parse_preference(record.values, record.where) for record in read_records(path)]


def is_preference_file(path: str | Path) -> bool:
    """True when the first record of the file has both 'chosen' and 'rejected' fields."""
    from llmctl.data.records import read_records

    try:
        first = read_records(path)[0].values
    except DataError:
        return False
    return "chosen" in first and "rejected" in first


def _render_conversation(tokenizer: Any, prompt: Messages, completion: Messages,
                         chat_template: str | None) -> tuple[str, str]:
    """Prompt text (with the generation prompt) and the completion text that the chat template appends to it."""
    template = {"chat_template": chat_template} if chat_template and not tokenizer.chat_template else {}
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, **template)
    full_text = tokenizer.apply_chat_template(prompt + completion, tokenize=False, **template)
    if not full_text.startswith(prompt_text):
        raise DataError("the chat template does not render the prompt as a prefix of the conversation; "
                        "use plain-text preference data for this model")
    return prompt_text, full_text[len(prompt_text):]


def encode_completions(prompt: Text, completions: Sequence[Text], tokenizer: Any, max_length: int | None = None,
                       chat_template: str | None = None) -> tuple[list[int], list[list[int]]]:
    """Token ids of a prompt and of each of its completions (a pair's two answers, a KTO row's one, a LiPO list).

    Chat prompts are rendered with the chat template and each completion is what the template appends to the
    prompt; plain-text completions end with EOS. With ``max_length``, long prompts lose their start first (keeping
    at least half of ``max_length`` when the longest completion would otherwise leave less), then completions are cut
    to the room left.
    """
    if not completions:
        raise ValueError("encode_completions needs at least one completion")
    if isinstance(prompt, list):
        rendered = [_render_conversation(tokenizer, prompt, list(c), chat_template) for c in completions]
        prompt_ids = tokenizer(rendered[0][0], add_special_tokens=False)["input_ids"]
        answers = [tokenizer(text, add_special_tokens=False)["input_ids"] for _, text in rendered]
    else:
        prompt_ids = tokenizer(prompt)["input_ids"]
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        answers = [tokenizer(completion, add_special_tokens=False)["input_ids"] + eos for completion in completions]
    if max_length is not None:
        longest = max(len(answer) for answer in answers)
        keep_prompt = max(max_length - longest, min(len(prompt_ids), max_length // 2))
        prompt_ids = prompt_ids[-keep_prompt:] if keep_prompt else []
        room = max_length - len(prompt_ids)
        answers = [answer[:room] for answer in answers]
    return list(prompt_ids), [list(answer) for answer in answers]


def encode_preference(example: PreferenceExample, tokenizer: Any, max_length: int | None = None,
                      chat_template: str | None = None) -> EncodedPair:
    """Token ids for one pair; plain-text answers end with EOS, and long prompts lose their start first."""
    prompt_ids, (chosen_ids, rejected_ids) = encode_completions(example.prompt, [example.chosen, example.rejected],
                                                                tokenizer, max_length, chat_template)
    return EncodedPair(prompt_ids, chosen_ids, rejected_ids)


def collate_rows(rows: Sequence[tuple[Sequence[int], Sequence[int]]], pad_token_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``completion_mask`` (1 on answer tokens) of (prompt, answer)
    rows."""
    import torch

    width = max(len(prompt) + len(answer) for prompt, answer in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    completion_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (prompt, answer) in enumerate(rows):
        length = len(prompt) + len(answer)
        input_ids[row, :length] = torch.tensor([*prompt, *answer], dtype=torch.long)
        attention_mask[row, :length] = 1
        completion_mask[row, len(prompt):length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "completion_mask": completion_mask}


def collate_pairs(pairs: Sequence[EncodedPair], pad_token_id: int) -> dict[str, Any]:
    """A padded batch: rows ``[chosen…, rejected…]`` with ``input_ids``, ``attention_mask``, ``completion_mask``."""
    rows = [(p.prompt_ids, p.chosen_ids) for p in pairs] + [(p.prompt_ids, p.rejected_ids) for p in pairs]
    return collate_rows(rows, pad_token_id)
