"""Data for cross-tokenizer distillation: every example encoded twice, by the student's and the teacher's tokenizer.

The student's side is exactly what supervised fine-tuning trains on; the teacher reads the same prompt and answer
through its own tokenizer and chat template, and the answer tokens of both sides are paired by index in the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.data.dataset import SftData, load_examples, split_validation
from llmctl.data.encode import EncodedExample, chat_template_for, encode_example
from llmctl.errors import DataError
from llmctl.models.tokens import pad_token_id

TEACHER_KEYS = ("_teacher_input_ids", "_teacher_attention_mask", "_teacher_labels")


@dataclass(frozen=True)
class PairedExample:
    """One example as the student's tokenizer encodes it and as the teacher's does."""

    student: EncodedExample
    teacher: EncodedExample


def load_paired_data(settings: Any, context: Any, teacher: Any) -> SftData:
    """Training and validation :class:`PairedExample` items from ``--data`` (or ``val_data``), split as SFT splits."""
    if settings["packing"]:
        raise DataError("packing=true cannot be used when the teacher has its own tokenizer (ULD pairs each "
                        "example's tokens by index); set packing=false")
    family_template = getattr(context.family, "chat_template", None)
    student_template = chat_template_for(context.tokenizer, family_template)

    def encode(examples: list[Any]) -> tuple[list[PairedExample], int]:
        items = [PairedExample(
            encode_example(e, context.tokenizer, student_template, settings["max_length"], settings["train_on_prompt"]),
            encode_example(e, teacher.tokenizer, teacher.template, settings["max_length"], settings["train_on_prompt"]))
            for e in examples]
        kept = [item for item in items if item.student.trained_tokens > 0]
        return kept, len(items) - len(kept)

    examples, chosen = load_examples(context.data_path, context.data_format)
    train, dropped = encode(examples)
    if settings["val_data"]:
        validation, more = encode(load_examples(settings["val_data"], context.data_format)[0])
        dropped += more
    else:
        train, validation = split_validation(train, settings["val_split"], settings["seed"])
    if not train:
        raise DataError(f"{context.data_path}: no example keeps an answer token within "
                        f"max_length={settings['max_length']}")
    notes = ([f"{dropped} example(s) skipped: no answer token left within max_length={settings['max_length']}"]
             if dropped else [])
    return SftData(train, validation, chosen, len(examples), dropped, notes)


def collate_paired(items: list[PairedExample], student_pad: int, teacher_tokenizer: Any) -> dict[str, Any]:
    """The student's padded batch plus the teacher's under ``_teacher_*`` keys (bookkeeping to the loop)."""
    from llmctl.data.batching import collate_padded

    batch = collate_padded([item.student for item in items], student_pad)
    teacher = collate_padded([item.teacher for item in items], pad_token_id(teacher_tokenizer))
    for key, name in zip(TEACHER_KEYS, ("input_ids", "attention_mask", "labels"), strict=True):
        batch[key] = teacher[name]
    return batch
