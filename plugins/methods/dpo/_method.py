"""DPO / IPO on the shared loop: the reference is the base with the adapter disabled (no second copy)."""

from __future__ import annotations

from typing import Any

from llmctl.models.tokens import pad_token_id
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod
from llmctl.train.prompts import load_preference_data
from llmctl.train.reference import ReferencePolicyMethod


class DpoMethod(ReferencePolicyMethod, TrainingMethod):
    """Preference optimisation from prompt/chosen/rejected pairs."""

    name = "dpo"

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """Preference pairs, validated with file:line errors and encoded with the chat template."""
        return load_preference_data(settings, context)

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """``[chosen…, rejected…]`` rows with a completion mask."""
        from llmctl.data.preference import collate_pairs

        return collate_pairs(items, pad_token_id(context.tokenizer))

    def count(self, batch: dict[str, Any]) -> int:
        """Loss units are pairs."""
        return batch["input_ids"].shape[0] // 2

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """Summed DPO loss over the batch's pairs, with rewards, margin and accuracy as metrics."""
        from llmctl_plugins.methods.dpo._loss import preference_batch_loss

        reference = self.reference_model(model)
        result = preference_batch_loss(model, batch, settings["beta"], settings["label_smoothing"],
                                       settings["loss_type"], reference_model=reference)
        pairs = self.count(batch)
        return LossOutput(result.loss * pairs, pairs, result.metrics(), tokens=int(batch["attention_mask"].sum()))
