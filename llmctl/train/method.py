"""The contract every training method implements; the one training loop calls nothing else.

A method plugin subclasses :class:`TrainingMethod` and overrides what differs: LoRA overrides ``prepare`` (and
LoRA+ ``make_optimizer``); an alignment method overrides ``load_data``, ``collate`` and ``loss``. Every hook has a
default, so the smallest method overrides one. The loop calls, in order:

1. ``load_data(settings, context)`` (before the model loads, so bad data fails fast; after ``prepare`` when
   ``needs_model_for_data``), ``load_model`` (None: the usual loading), ``prepare``; ``--dry-run`` calls
   ``check_data(settings, context)`` instead of ``load_data``;
2. ``trains(settings)``: False skips the optimizer steps (rejection sampling without ``finetune``);
3. per step: ``collate`` → ``count`` → ``loss`` per micro-batch, the optimizer step, ``after_step``; each
   checkpoint keeps ``state()``, and a resumed run hands it back to ``load_state`` before its first step;
4. ``save(model, tokenizer, folder, state_dict)`` into the run folder; ``output_kind(settings)`` says what it wrote.

Imports of torch, peft and transformers happen inside the methods, so a plugin module can subclass this at import
time cheaply. This module is public API (re-exported by :mod:`llmctl.api`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from llmctl.data.encode import IGNORE

OUTPUT_KINDS = ("adapter", "model", "data")


@dataclass
class MethodContext:
    """What a method may need besides the model and settings; the core builds one per run and passes it to every hook.

    ``family`` is the model's :class:`llmctl.descriptors.Family` (None for a model type no plugin handles);
    ``model_dir`` the base model's folder; ``device`` where training runs (``meta`` in ``--dry-run``);
    ``data_path``/``data_format`` the ``--data`` file; ``trust_remote_code`` the user's explicit flag, to pass on to
    anything the method loads (a reward model, a teacher); ``run_dir`` the run folder (None before it exists);
    ``precision`` the autocast the loop runs ``loss`` under (``fp32``, ``bf16``, ``fp16``; known once training
    starts), for work a method does outside it, such as sampling in ``collate``.
    """

    family: Any = None
    tokenizer: Any = None
    model_dir: Path | None = None
    device: str = "cpu"
    data_path: Path | None = None
    data_format: str = "auto"
    trust_remote_code: bool = False
    run_dir: Path | None = None
    precision: str = "fp32"


@dataclass
class LossOutput:
    """A batch's summed loss over ``count`` units (tokens for SFT, pairs for preferences) and extra metrics.

    The loop divides ``total`` by the count over the whole optimizer step (all micro-batches and processes), so
    accumulation and multi-process runs give the same gradients as one large batch.
    """

    total: Any
    count: int
    metrics: dict[str, float] = field(default_factory=dict)
    tokens: int | None = None
    """Tokens this micro-batch trained on, for tokens/s (None: every position of ``batch["input_ids"]``)."""


def full_tensor(tensor: Any) -> Any:
    """The whole tensor behind an FSDP2 shard (a collective: every process must call it), else the tensor."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The keys of a batch the model takes (not ``labels``, not ``_``-prefixed bookkeeping)."""
    return {k: v for k, v in batch.items() if k != "labels" and not k.startswith("_")}


def accepts_logits_to_keep(model: Any) -> bool:
    """Whether the causal LM inside any DDP/peft wrapper computes logits only where asked (``logits_to_keep``)."""
    from llmctl.train.distributed import unwrap

    inner = unwrap(model)
    if hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    return _forward_takes_logits_to_keep(type(inner))


@functools.cache
def _forward_takes_logits_to_keep(model_class: type) -> bool:
    """Read once per model class (the loss asks every micro-batch)."""
    import inspect

    try:
        return "logits_to_keep" in inspect.signature(model_class.forward).parameters
    except (TypeError, ValueError):
        return False


def adamw_options(parameters: list[Any]) -> dict[str, Any]:
    """``fused=True`` where torch has a fused AdamW kernel for every parameter (plain CPU or CUDA tensors), else {}.

    The fused kernel does the same update in one pass over each tensor instead of about ten operator calls per
    tensor; HF Trainer uses it by default too (``adamw_torch_fused``). Sharded (DTensor) parameters keep the default.
    """
    import torch

    plain = all(type(p) is torch.nn.Parameter and p.device.type in ("cpu", "cuda") and p.is_floating_point()
                for p in parameters)
    return {"fused": True} if parameters and plain else {}


class TrainingMethod:
    """Base class of methods; by default plain supervised fine-tuning of whatever ``prepare`` leaves trainable.

    ``output`` declares what the run folder gets: ``adapter`` (a peft adapter on the base), ``model`` (a whole
    model with its tokenizer) or ``data`` (files only, such as rejection sampling's best-of-N set); a method whose
    answer depends on its settings overrides :meth:`output_kind`. ``needs_model_for_data`` makes the loop prepare the
    model before ``load_data`` (a method that generates its data with the model).
    """

    name: ClassVar[str] = "base"
    output: ClassVar[str] = "adapter"
    needs_model_for_data: ClassVar[bool] = False

    def output_kind(self, settings: Any) -> str:
        """What this run writes (one of :data:`OUTPUT_KINDS`); the core records it in the run's ``llmctl.json``."""
        return self.output

    def trains(self, settings: Any) -> bool:
        """Whether the loop runs optimizer steps (False: prepare, load data and save only)."""
        return True

    def load_model(self, settings: Any, context: MethodContext) -> Any:
        """Load the base model in a special way (QLoRA: 4-bit); None means the loop's usual loading."""
        return None

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Ready ``model`` for training (wrap it in an adapter, freeze parts) and return it."""
        return model

    def check_data(self, settings: Any, context: MethodContext) -> int | None:
        """Check the data file without a tokenizer or model (``finetune --dry-run``); the number of examples.

        None (the default) leaves the check to the descriptor's ``kind``: SFT data is validated as examples, other
        kinds are counted as records.
        """
        return None

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """Training and validation items (:class:`llmctl.data.dataset.SftData`)."""
        from llmctl.data.dataset import load_sft_data

        family_template = getattr(context.family, "chat_template", None)
        return load_sft_data(context.data_path, context.tokenizer, data_format=context.data_format,
                             max_length=settings["max_length"], val_split=settings["val_split"],
                             val_data=settings["val_data"] or None, packing=settings["packing"],
                             train_on_prompt=settings["train_on_prompt"], family_template=family_template,
                             seed=settings["seed"])

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """A batch of tensors from training items."""
        from llmctl.data.batching import collate
        from llmctl.models.tokens import pad_token_id

        return collate(items, pad_token_id(context.tokenizer))

    def count(self, batch: dict[str, Any]) -> int:
        """The loss units in a batch (trained tokens after the causal shift)."""
        return int((batch["labels"][:, 1:] != IGNORE).sum())

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """Summed next-token cross-entropy over labelled tokens."""
        import torch.nn.functional as F

        inputs = model_inputs(batch)
        labels = batch["labels"][:, 1:]
        trained = labels != IGNORE
        if accepts_logits_to_keep(model) and bool(trained.any()):
            # Project only the positions that carry loss onto the vocabulary: instruction data trains on the
            # answers alone, so most positions need no logits (see docs/benchmarks.md, fine-tuning section).
            keep = F.pad(trained, (0, 1), value=False)
            logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits
            targets = labels[trained]
        else:
            logits = model(**inputs, use_cache=False).logits[:, :-1]
            targets = labels
        total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                ignore_index=IGNORE, reduction="sum")
        return LossOutput(total, int(trained.sum()), tokens=batch.get("_tokens"))  # real tokens, padding not counted

    def trainable_parameters(self, model: Any) -> list[tuple[str, Any]]:
        """(name, parameter) pairs the optimizer updates."""
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def make_optimizer(self, model: Any, settings: Any) -> Any:
        """AdamW over the trainable parameters (no weight decay on biases and norms)."""
        import torch

        decay, plain = [], []
        for name, parameter in self.trainable_parameters(model):
            (plain if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
        groups = [{"params": decay, "weight_decay": settings["weight_decay"]},
                  {"params": plain, "weight_decay": 0.0}]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=settings["learning_rate"],
                                 **adamw_options([p for g in groups for p in g["params"]]))

    def trainable_state(self, model: Any) -> dict[str, Any]:
        """The tensors a checkpoint must keep (the trainable ones)."""
        return {name: full_tensor(parameter).detach().clone() for name, parameter in self.trainable_parameters(model)}

    def load_trainable_state(self, model: Any, state: dict[str, Any]) -> None:
        """Copy checkpointed tensors back into the model."""
        import torch

        parameters = dict(model.named_parameters())
        missing = [name for name in state if name not in parameters]
        if missing:
            from llmctl.errors import LlmctlError

            raise LlmctlError(f"checkpoint does not fit the model (unknown tensor {missing[0]!r})")
        with torch.no_grad():
            for name, tensor in state.items():
                parameters[name].copy_(tensor)

    def after_step(self, model: Any, step: int) -> None:
        """Called after every optimizer step with the unwrapped model (PPO updates its weight average here)."""

    def state(self) -> dict[str, Any]:
        """What the method carries from one step to the next, for checkpoints (tensors, numbers, strings, lists and
        dicts of them); resuming hands it to :meth:`load_state`. GRPO keeps a rollout it reuses here. Default: {}."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state` returned when the checkpoint was written (called on resume)."""

    def save(self, model: Any, tokenizer: Any, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        """Write the result (an adapter, or a whole model) to ``directory``.

        ``state_dict`` holds the gathered full weights under FSDP (every process gathered them; only the first
        saves); pass it on to ``save_pretrained``.
        """
        model.save_pretrained(directory, state_dict=state_dict)
        if tokenizer is not None and not hasattr(model, "peft_config"):  # a whole model carries its tokenizer
            tokenizer.save_pretrained(directory)
