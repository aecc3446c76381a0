"""Which chat template a model gets: its own (tokenizer or GGUF metadata), its family's fallback, or none."""

from __future__ import annotations

import re
from typing import Any

INSTRUCT_NAME = re.compile(r"(instruct|[-_]it\b|[-_]it[-_]|chat)", re.IGNORECASE)


def looks_instruction_tuned(name: str) -> bool:
    """A guess from a model's name, for models the registry does not describe."""
    return bool(INSTRUCT_NAME.search(name))


def is_instruction_tuned(names: list[str], registry: Any = None) -> bool:
    """Whether the model known by any of ``names`` is instruction-tuned (registry first, then the name)."""
    if registry is None:
        from llmctl.plugins import get_registry

        registry = get_registry()
    for name in names:
        if not name:
            continue
        found = registry.find_model(name)
        if found is not None:
            return found[1].instruct
    return any(looks_instruction_tuned(n) for n in names if n)


def fallback_template(model_type: str | None, instruct: bool, registry: Any = None) -> str | None:
    """The family's template for an instruction-tuned model whose files carry none; None for base models."""
    if not instruct or not model_type:
        return None
    if registry is None:
        from llmctl.plugins import get_registry

        registry = get_registry()
    family = registry.family_for_model_type(model_type)
    return family.chat_template if family is not None else None

