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


def locate_teacher(ref: str) -> str:
    """The reference to resolve for ``ref``: itself when llmctl finds such a model, else a run folder of that name
    holding a whole model (``--method full``); an adapter run or an unknown name is one line (with did-you-mean)."""
    from llmctl.models.adapters import is_adapter_dir
    from llmctl.models.resolve import find_model_source
    from llmctl.store import runs_dir

    if not ref.strip():
        raise LlmctlError("needs teacher=MODEL (a registry name, store artefact or model folder)")
    for folder in (Path(ref).expanduser(), runs_dir() / ref):
        if folder.is_dir() and not (folder / "config.json").is_file() and is_adapter_dir(folder):
            raise LlmctlError(f"teacher {ref!r} is an adapter run, not a model; fold it into its base first with "
                              f"`llmctl convert {ref} --merge` and pass the merged model as teacher")
    try:
        find_model_source(ref)
        return ref
    except LlmctlError as error:
        run = runs_dir() / ref
        if not Path(ref).expanduser().exists() and (run / "config.json").is_file():
            return str(run)
        raise _named(error) from None


def _named(error: LlmctlError) -> LlmctlError:
    """``error`` (its class and exit code kept) with its message saying it is about the teacher."""
    if not str(error).startswith("teacher"):
        error.args = (f"teacher: {error}",)
    return error


def teacher_problem(ref: str) -> str | None:
    """Why ``ref`` names no usable teacher (one line), without fetching anything; None when it does."""
    try:
        locate_teacher(ref)
    except LlmctlError as error:
        return str(error)
    return None


def resolve_teacher(ref: str, trust_remote_code: bool = False) -> Teacher:
    """The teacher's model folder (fetched or converted once, like any model), tokenizer and chat template."""
    from llmctl.data.encode import PLAIN_TEMPLATE
    from llmctl.generate.template import fallback_template, is_instruction_tuned
    from llmctl.models.loading import load_tokenizer, read_model_config
    from llmctl.models.resolve import resolve_model

    try:
        artefact = resolve_model(locate_teacher(ref), trust_remote_code=trust_remote_code)
    except LlmctlError as error:
        raise _named(error) from None
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
    """Whether the teacher can read the student's token ids: every token of the smaller vocabulary has the same id in
    the larger, and the larger's extra tokens (a pad token added in fine-tuning) come after them."""
    student, teacher = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    small, large = (student, teacher) if len(student) <= len(teacher) else (teacher, student)
    if any(large.get(token) != index for token, index in small.items()):
        return False
    return all(index >= len(small) for token, index in large.items() if token not in small)
