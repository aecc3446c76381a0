"""The teacher: resolved like any model reference, its tokenizer and chat template, and the frozen model itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import LlmctlError


@dataclass
class Teacher:
    """A resolved teacher: its name, model folder, tokenizer and the template its conversations are rendered with."""

    ref: str
    name: str
    path: Path
    tokenizer: Any
    template: str
    model: Any = None


def teacher_problem(ref: str) -> str | None:
    """Why ``ref`` names no model llmctl can find (one line with did-you-mean), without fetching anything."""
    from llmctl.models.resolve import find_model_source

    if not ref.strip():
        return "needs teacher=MODEL (a registry name, store artefact or model folder)"
    try:
        find_model_source(ref)
    except LlmctlError as error:
        return f"teacher: {error}"
    return None


def resolve_teacher(ref: str, trust_remote_code: bool = False) -> Teacher:
    """The teacher's model folder (fetched or converted once, like any model), tokenizer and chat template."""
    from llmctl.data.encode import PLAIN_TEMPLATE
    from llmctl.generate.template import fallback_template, is_instruction_tuned
    from llmctl.models.loading import load_tokenizer, read_model_config
    from llmctl.models.resolve import resolve_model

    try:
        artefact = resolve_model(ref, trust_remote_code=trust_remote_code)
    except LlmctlError as error:
        raise type(error)(f"teacher: {error}") from None
    if artefact.format != "safetensors" or not (artefact.path / "config.json").is_file():
        raise LlmctlError(f"teacher {ref!r}: distillation needs a Hugging Face model folder, got a "
                          f"{artefact.format} artefact; convert it first with `llmctl convert`")
    config = read_model_config(artefact.path, trust_remote_code)
    tokenizer = load_tokenizer(artefact.path, trust_remote_code)
    names = [ref, artefact.name, str(artefact.meta.get("origin", ""))]
    template = (getattr(tokenizer, "chat_template", None)
                or fallback_template(config.get("model_type"), is_instruction_tuned(names)) or PLAIN_TEMPLATE)
    return Teacher(ref, artefact.name, Path(artefact.path), tokenizer, template)


def load_teacher_model(teacher: Teacher, dtype: str, device: str, trust_remote_code: bool = False) -> Any:
    """The teacher's causal LM on ``device``: eval mode, every weight frozen."""
    from llmctl.models.loading import load_causal_lm

    model = load_causal_lm(teacher.path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    return model.eval().requires_grad_(False)


def same_vocabulary(student_tokenizer: Any, teacher_tokenizer: Any) -> bool:
    """Whether both tokenizers map the same strings to the same ids (then the teacher can read the student's ids)."""
    return student_tokenizer.get_vocab() == teacher_tokenizer.get_vocab()
