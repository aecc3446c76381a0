"""Distillation on the shared loop: the student trains on SFT data against a frozen teacher's logits.

With one vocabulary the teacher reads the student's own token ids and the divergence is taken position by position
over the answer tokens; with two tokenizers every example is encoded for each side (:mod:`._data`) and the answer
positions are paired by index for the ULD distance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from llmctl.data.encode import IGNORE
from llmctl.errors import DataError
from llmctl.models.tokens import pad_token_id
from llmctl.train.adapters import adapter_output, lora_config, wrap_in_adapter
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod, accepts_logits_to_keep, model_inputs
from llmctl_plugins.methods.distill._loss import KL_LOSSES

RECORD_FILE = "distill.json"


def choose_loss(requested: str, shared_vocabulary: bool, teacher: str) -> str:
    """The loss a run uses: ``auto`` is forward KL on a shared vocabulary and ULD otherwise; a KL-family loss across
    tokenizers is refused in one line."""
    if requested == "auto":
        return "forward_kl" if shared_vocabulary else "uld"
    if requested in KL_LOSSES and not shared_vocabulary:
        raise DataError(f"loss={requested} needs the teacher to share the student's vocabulary, and teacher "
                        f"{teacher!r} has another tokenizer; use loss=uld (or loss=auto)")
    return requested


def answer_logits(model: Any, inputs: dict[str, Any], trained: Any) -> Any:
    """Logits ``(N, V)`` of the positions that predict a labelled token (``trained``: the labels after the causal
    shift are not ignored), in row-major order; only those positions are projected when the model allows it."""
    import torch.nn.functional as F

    if accepts_logits_to_keep(model) and bool(trained.any()):
        keep = F.pad(trained, (0, 1), value=False)
        logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits
        return logits.reshape(-1, logits.shape[-1])
    return model(**inputs, use_cache=False).logits[:, :-1][trained]


class DistillMethod(TrainingMethod):
    """A student (LoRA by default) trained on labelled data to match a frozen teacher's next-token distributions."""

    name = "distill"

    def __init__(self) -> None:
        self.teacher: Any = None
        self.loss_kind = ""

    def output_kind(self, settings: Any) -> str:
        """An adapter, or the whole student with ``adapter=none``."""
        return adapter_output(settings)

    def _resolve(self, settings: Any, context: MethodContext) -> Any:
        """The teacher (resolved once per run) and the loss its tokenizer allows."""
        from llmctl_plugins.methods.distill._teacher import resolve_teacher, same_vocabulary

        if self.teacher is None:
            self.teacher = resolve_teacher(settings["teacher"], context.trust_remote_code)
            shared = same_vocabulary(context.tokenizer, self.teacher.tokenizer)
            self.loss_kind = choose_loss(settings["loss"], shared, settings["teacher"])
        return self.teacher

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """The student's SFT data; across tokenizers each example is encoded for the teacher too."""
        from llmctl.data.dataset import load_examples
        from llmctl_plugins.methods.distill._data import load_paired_data

        load_examples(context.data_path, context.data_format)  # bad data fails before the teacher is fetched
        teacher = self._resolve(settings, context)
        _say(self._describe(settings))
        if self.loss_kind == "uld":
            return load_paired_data(settings, context, teacher)
        return super().load_data(settings, context)

    def _describe(self, settings: Any) -> str:
        if self.loss_kind == "uld":
            return (f"distill: teacher {self.teacher.name} has another tokenizer → Universal Logit Distillation "
                    f"(loss = CE + {settings['uld_weight']:g} × ULD, T {settings['temperature']:g})")
        beta = f", β {settings['jsd_beta']:g}" if self.loss_kind == "jsd" else ""
        return (f"distill: teacher {self.teacher.name} shares the student's vocabulary → {self.loss_kind} "
                f"(loss = {settings['alpha']:g} × CE + {1 - settings['alpha']:g} × {self.loss_kind}, "
                f"T {settings['temperature']:g}{beta})")

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Load the frozen teacher (not under ``--dry-run``) and wrap the student in its adapter."""
        from llmctl_plugins.methods.distill._teacher import load_teacher_model

        if context.device != "meta":
            teacher = self._resolve(settings, context)
            if teacher.model is None:
                teacher.model = load_teacher_model(teacher, settings["dtype"], context.device,
                                                   context.trust_remote_code)
        if settings["adapter"] == "none":
            return model.requires_grad_(True)
        return wrap_in_adapter(model, lora_config(settings["adapter"], settings, context.family), settings["adapter"])

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """The student's batch; across tokenizers the teacher's own under ``_teacher_*`` keys."""
        from llmctl_plugins.methods.distill._data import collate_paired

        if self.loss_kind == "uld":
            return collate_paired(items, pad_token_id(context.tokenizer), self.teacher.tokenizer)
        return super().collate(items, context)

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """Summed ``alpha·CE + (1 − alpha)·divergence`` (KL family) or ``CE + uld_weight·ULD`` over answer tokens."""
        import torch
        import torch.nn.functional as F

        labels = batch["labels"][:, 1:]
        trained = labels != IGNORE
        count = int(trained.sum())
        student = answer_logits(model, model_inputs(batch), trained)
        ce = F.cross_entropy(student.float(), labels[trained], reduction="sum")
        if self.loss_kind == "uld":
            total, metrics = self._uld(student, batch, trained, settings)
            total = ce + settings["uld_weight"] * total
        else:
            with torch.no_grad():
                teacher = answer_logits(self.teacher.model, model_inputs(batch), trained)
            total, metrics = self._kl_family(student, teacher, settings)
            total = settings["alpha"] * ce + (1 - settings["alpha"]) * total
        metrics = {"ce": float(ce.detach()) / max(count, 1), **metrics}
        return LossOutput(total, count, metrics, tokens=batch.get("_tokens"))

    def _kl_family(self, student: Any, teacher: Any, settings: Any) -> tuple[Any, dict[str, float]]:
        """Summed divergence and, as metrics, its mean and the mean forward KL at temperature 1."""
        import torch

        from llmctl_plugins.methods.distill._loss import kl_family_loss

        temperature = settings["temperature"]
        per = kl_family_loss(self.loss_kind, student, teacher, settings["jsd_beta"], temperature)
        if self.loss_kind == "forward_kl" and temperature == 1:
            kl = per.detach()
        else:
            with torch.no_grad():
                kl = kl_family_loss("forward_kl", student.detach(), teacher)
        rows = max(per.shape[0], 1)
        return per.sum(), {"distill": float(per.detach().sum()) / rows, "kl": float(kl.sum()) / rows}

    def _uld(self, student: Any, batch: dict[str, Any], trained: Any, settings: Any) -> tuple[Any, dict[str, float]]:
        """Summed ULD distance over the answer positions paired by index, its mean, and the share of the student's
        answer positions that found a teacher position."""
        import torch

        from llmctl_plugins.methods.distill._loss import align_by_index, uld_distance

        teacher_trained = batch["_teacher_labels"][:, 1:] != IGNORE
        with torch.no_grad():
            teacher = answer_logits(self.teacher.model, {"input_ids": batch["_teacher_input_ids"],
                                                         "attention_mask": batch["_teacher_attention_mask"]},
                                    teacher_trained)
        student_rows, teacher_rows = align_by_index(trained.sum(1).tolist(), teacher_trained.sum(1).tolist())
        per = uld_distance(student[student_rows], teacher[teacher_rows], settings["temperature"])
        rows = max(len(student_rows), 1)
        metrics = {"distill": float(per.detach().sum()) / rows, "uld": float(per.detach().sum()) / rows,
                   "aligned": len(student_rows) / max(int(trained.sum()), 1)}
        if settings["temperature"] != 1:
            with torch.no_grad():
                metrics["uld"] = float(uld_distance(student[student_rows].detach(), teacher[teacher_rows]).sum()) / rows
        return per.sum(), metrics

    def save(self, model: Any, tokenizer: Any, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        """The student (adapter or whole model) and ``distill.json`` naming the teacher and the loss used."""
        super().save(model, tokenizer, directory, state_dict)
        if self.teacher is not None:
            record = {"teacher": self.teacher.ref, "teacher_model": self.teacher.name,
                      "teacher_path": str(self.teacher.path), "loss": self.loss_kind}
            (Path(directory) / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")


def _say(line: str) -> None:
    """One line on stderr from the first process only."""
    if os.environ.get("RANK", "0") == "0":
        from llmctl.console import err_console

        err_console.print(line, markup=False, highlight=False)
