"""Supervised fine-tuning formats: plain ``text``, ``alpaca`` (instruction/input/output) and chat ``messages``.

Every record becomes an :class:`SftExample`: either plain text (loss on every token) or a conversation whose
assistant turns are the answers (loss on those only, unless asked otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.data.records import Record
from llmctl.errors import DataError

FORMATS = ("auto", "text", "alpaca", "messages")
ROLES = ("system", "user", "assistant", "tool")
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SftExample:
    """One training example: ``text`` for plain text, otherwise ``messages`` (a conversation)."""

    where: str
    text: str | None = None
    messages: tuple[dict[str, str], ...] = ()

    @property
    def is_conversation(self) -> bool:
        """True for instruction or chat data (answers are the assistant turns)."""
        return self.text is None


def detect_format(record: Record) -> str:
    """The format of a record from its fields: ``messages``, ``alpaca`` or ``text``."""
    fields = record.values
    if "messages" in fields or "conversations" in fields:
        return "messages"
    if "instruction" in fields or "output" in fields:
        return "alpaca"
    if "text" in fields:
        return "text"
    names = ", ".join(sorted(fields)) or "none"
    raise DataError(f"{record.where}: cannot tell the data format from fields ({names}); expected 'text', "
                    "'instruction'/'input'/'output' or 'messages' (or pass --format)")


def _string(record: Record, field: str, required: bool = True) -> str:
    if field not in record.values or record.values[field] is None:
        if required:
            raise DataError(f"{record.where}: missing field {field!r}")
        return ""
    value = record.values[field]
    if not isinstance(value, str):
        raise DataError(f"{record.where}: field {field!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise DataError(f"{record.where}: field {field!r} is empty")
    return value


def _text_example(record: Record) -> SftExample:
    return SftExample(record.where, text=_string(record, "text"))


def _alpaca_example(record: Record) -> SftExample:
    instruction = _string(record, "instruction")
    extra = _string(record, "input", required=False)
    output = _string(record, "output")
    system = _string(record, "system", required=False)
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages = ([{"role": "system", "content": system}] if system.strip() else [])
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    return SftExample(record.where, messages=tuple(messages))


def _messages_example(record: Record) -> SftExample:
    field = "messages" if "messages" in record.values else "conversations"
    items = record.values.get(field)
    if not isinstance(items, list) or not items:
        raise DataError(f"{record.where}: field {field!r} must be a non-empty list of messages")
    messages = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DataError(f"{record.where}: field '{field}[{index}]' must be an object with 'role' and 'content'")
        role, content = item.get("role", item.get("from")), item.get("content", item.get("value"))
        if role is None:
            raise DataError(f"{record.where}: missing field '{field}[{index}].role'")
        if not isinstance(role, str):
            raise DataError(f"{record.where}: field '{field}[{index}].role' must be a string, got "
                            f"{type(role).__name__}")
        role = {"human": "user", "gpt": "assistant"}.get(role, role)
        if role not in ROLES:
            raise DataError(f"{record.where}: field '{field}[{index}].role' is {role!r}; expected one of "
                            f"{', '.join(ROLES)}")
        if not isinstance(content, str):
            raise DataError(f"{record.where}: missing field '{field}[{index}].content'" if content is None else
                            f"{record.where}: field '{field}[{index}].content' must be a string")
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{record.where}: field {field!r} has no assistant message to learn from")
    return SftExample(record.where, messages=tuple(messages))


PARSERS = {"text": _text_example, "alpaca": _alpaca_example, "messages": _messages_example}


def parse_examples(records: list[Record], data_format: str = "auto") -> tuple[list[SftExample], str]:
    """The examples of ``records`` in ``data_format`` (``auto``: detected from the first record) and that format."""
    if data_format not in FORMATS:
        raise DataError(f"unknown data format {data_format!r}; expected one of {', '.join(FORMATS)}")
    chosen = detect_format(records[0]) if data_format == "auto" else data_format
    parser = PARSERS[chosen]
    return [parser(record) for record in records], chosen


def example_fields(example: SftExample) -> dict[str, Any]:
    """The example as a JSON-ready record (for writing data sets back out)."""
    if example.text is not None:
        return {"text": example.text}
    return {"messages": [dict(m) for m in example.messages]}
