"""Shared pieces of the alignment methods (imported only when a run uses one): adapters, data, reference."""

from __future__ import annotations

import copy
from typing import Any

from llmctl.config import Range
from llmctl.errors import DataError

ADAPTER_DEFAULTS = {"adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ""}
ADAPTER_HELP = {
    "adapter": "lora, dora or none (none trains every weight and keeps a frozen reference copy)",
    "lora_r": "adapter rank",
    "lora_alpha": "adapter scale numerator (scale = alpha / r)",
    "lora_dropout": "dropout on the adapter input",
    "target_modules": "comma-separated module names (empty: the family's defaults)",
}
ADAPTERS = ("lora", "dora", "none")
ADAPTER_CHOICES = {"adapter": ADAPTERS}
ADAPTER_RANGES = {"lora_r": Range(1), "lora_alpha": Range(0, low_open=True),
                  "lora_dropout": Range(0, 1, high_open=True)}
SAMPLING_RANGES = {"max_new_tokens": Range(1), "temperature": Range(0, low_open=True), "top_k": Range(0)}


def wrap_for_training(model: Any, settings: Any, context: Any, task_type: str = "CAUSAL_LM") -> tuple[Any, Any]:
    """(trainable model, frozen reference or None): a peft adapter, or every weight plus a frozen copy."""
    adapter = settings["adapter"]
    if adapter not in ADAPTERS:
        raise DataError(f"setting 'adapter' must be one of {', '.join(ADAPTERS)}, got {adapter!r}")
    if adapter == "none":
        reference = copy.deepcopy(model).eval().requires_grad_(False)
        return model.requires_grad_(True), reference
    from llmctl_plugins.methods._lora_impl import lora_config, wrap_in_adapter

    config = lora_config(adapter, settings, context.family)
    config.task_type = task_type
    return wrap_in_adapter(model, config, adapter), None


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


def pad_id(tokenizer: Any) -> int:
    """The tokenizer's padding id (EOS when it has none, else 0)."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def _prompt_of(values: dict[str, Any], where: str) -> Any:
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


def load_prompts(settings: Any, context: Any) -> list[tuple[Any, list[int]]]:
    """(prompt, token ids) for every record of the data file (prompts longer than max_length keep their end)."""
    from llmctl.data.encode import chat_template_for
    from llmctl.data.records import read_records

    template = chat_template_for(context.tokenizer, getattr(context.family, "chat_template", None))
    prompts = []
    for record in read_records(context.data_path):
        prompt = _prompt_of(record.values, record.where)
        ids = prompt_token_ids(prompt, context.tokenizer, template)
        prompts.append((prompt, ids[-settings["max_length"]:]))
    return prompts


def require_reward(settings: Any) -> str:
    """The ``reward`` setting, which these methods cannot run without."""
    spec = str(settings["reward"] or "").strip()
    if not spec:
        raise DataError("this method needs reward=MODULE:FUNCTION or reward=REWARD_MODEL (an artefact or folder)")
    return spec
