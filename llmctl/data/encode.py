"""Token ids and labels for SFT examples: the chat template renders conversations, answers carry the loss.

Labels are ``-100`` (ignored) on prompt tokens unless ``train_on_prompt``; the first token of every example is
always ignored so that packed examples never learn to predict across their boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.data.formats import SftExample
from llmctl.errors import DataError

IGNORE = -100
# used when neither the tokenizer nor the family has a chat template
PLAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}"
    "{% else %}{{ '### Response:\n' + message['content'] + eos_token + '\n\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
)


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one example and their labels (``-100`` where no loss is taken)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def trained_tokens(self) -> int:
        """How many tokens carry loss."""
        return sum(1 for label in self.labels if label != IGNORE)


def chat_template_for(tokenizer: Any, family_template: str | None = None) -> str:
    """The template to render conversations with: the tokenizer's own, else the family's, else a plain one."""
    return getattr(tokenizer, "chat_template", None) or family_template or PLAIN_TEMPLATE


def _render(tokenizer: Any, messages: list[dict[str, str]], template: str, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt,
                                         chat_template=template)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_conversation(example: SftExample, tokenizer: Any, template: str,
                        train_on_prompt: bool = False) -> EncodedExample:
    """Render a conversation segment by segment; assistant turns are labelled, the rest ignored."""
    messages = list(example.messages)
    input_ids: list[int] = []
    labels: list[int] = []
    rendered = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:index], template, True) if index else ""
        answer = _render(tokenizer, messages[: index + 1], template, False)
        if not prompt.startswith(rendered) or not answer.startswith(prompt):
            raise DataError(f"{example.where}: the chat template does not render this conversation as a sequence "
                            "of prefixes; use the 'text' format for it")
        prompt_ids, answer_ids = _ids(tokenizer, prompt[len(rendered):]), _ids(tokenizer, answer[len(prompt):])
        input_ids += prompt_ids + answer_ids
        labels += (prompt_ids if train_on_prompt else [IGNORE] * len(prompt_ids)) + answer_ids
        rendered = answer
    full = _render(tokenizer, messages, template, False)
    if len(full) > len(rendered) and full.startswith(rendered) and messages[-1]["role"] != "assistant":
        tail = _ids(tokenizer, full[len(rendered):])
        input_ids += tail
        labels += tail if train_on_prompt else [IGNORE] * len(tail)
    return EncodedExample(tuple(input_ids), tuple(labels))


def encode_text(example: SftExample, tokenizer: Any) -> EncodedExample:
    """Plain text with the tokenizer's special tokens and a closing EOS; every token is labelled."""
    ids = list(tokenizer(example.text)["input_ids"])
    if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids.append(tokenizer.eos_token_id)
    return EncodedExample(tuple(ids), tuple(ids))


def encode_example(example: SftExample, tokenizer: Any, template: str, max_length: int,
                   train_on_prompt: bool = False) -> EncodedExample:
    """Token ids and labels of ``example``, cut to ``max_length`` tokens, first label ignored."""
    if example.is_conversation:
        encoded = encode_conversation(example, tokenizer, template, train_on_prompt)
    else:
        encoded = encode_text(example, tokenizer)
    ids, labels = list(encoded.input_ids[:max_length]), list(encoded.labels[:max_length])
    if labels:
        labels[0] = IGNORE
    return EncodedExample(tuple(ids), tuple(labels))
