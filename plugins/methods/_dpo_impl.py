"""DPO / IPO on the shared loop: the reference is the base with the adapter disabled (no second copy)."""

from __future__ import annotations

from typing import Any

from llmctl_plugins.methods._align_common import load_preference_data, pad_id, wrap_for_training

from llmctl.train.method import LossOutput, MethodContext, TrainingMethod


class DpoMethod(TrainingMethod):
    """Preference optimisation from prompt/chosen/rejected pairs."""

    name = "dpo"
    output = "adapter"

    def __init__(self) -> None:
        self.reference: Any = None

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """An adapter on the policy (reference = adapter off), or full weights with a frozen reference copy."""
        model, self.reference = wrap_for_training(model, settings, context)
        self.output = "model" if self.reference is not None else "adapter"
        return model

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """Preference pairs, validated with file:line errors and encoded with the chat template."""
        return load_preference_data(settings, context)

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """``[chosen…, rejected…]`` rows with a completion mask."""
        from llmctl.data.preference import collate_pairs

        batch = collate_pairs(items, pad_id(context.tokenizer))
        batch["_tokens"] = int(batch["attention_mask"].sum())
        return batch

    def count(self, batch: dict[str, Any]) -> int:
        """Loss units are pairs."""
        return batch["input_ids"].shape[0] // 2

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """Summed DPO loss over the batch's pairs, with rewards, margin and accuracy as metrics."""
        from llmctl.align.dpo import preference_batch_loss
        from llmctl.train.distributed import unwrap

        reference = self.reference
        if reference is None:  # the adapter is switched off on the unwrapped peft model
            reference = _AdapterOff(unwrap(model))
        result = preference_batch_loss(model, batch, settings["beta"], settings["label_smoothing"],
                                       settings["loss_type"], reference_model=reference)
        pairs = self.count(batch)
        return LossOutput(result.loss * pairs, pairs, result.metrics())


class _AdapterOff:
    """Calls the peft model with its adapters disabled (the reference policy)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, **inputs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(**inputs)
