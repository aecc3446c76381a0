"""LiPO-λ on the shared loop: the reference is the base with the adapter disabled (no second copy)."""

from __future__ import annotations

from typing import Any

from llmctl.models.tokens import pad_token_id
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod
from llmctl.train.reference import ReferencePolicyMethod


class LipoMethod(ReferencePolicyMethod, TrainingMethod):
    """Listwise preference optimisation from prompts with lists of scored responses."""

    name = "lipo"

    def check_data(self, settings: Any, context: MethodContext) -> int:
        """Check every list of the data file without a tokenizer (``--dry-run``); the number of lists."""
        from llmctl_plugins.methods.lipo._data import count_lipo

        return count_lipo(settings, context)

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """Scored lists, checked with file:line errors, capped at ``list_size`` and encoded with the chat template."""
        from llmctl_plugins.methods.lipo._data import load_lipo_data

        return load_lipo_data(settings, context)

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """Every response as a row, with the lists' scores and response mask."""
        from llmctl_plugins.methods.lipo._data import collate_lipo

        return collate_lipo(items, pad_token_id(context.tokenizer))

    def count(self, batch: dict[str, Any]) -> int:
        """Loss units are lists."""
        return int(batch["response_mask"].shape[0])

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """Summed LiPO-λ loss over the batch's lists, with rewards and ranking accuracy as metrics."""
        from llmctl_plugins.methods.lipo._loss import lipo_batch_loss

        reference = self.reference_model(model)
        result = lipo_batch_loss(model, batch, settings["beta"], reference_model=reference)
        return LossOutput(result.losses.sum(), self.count(batch), result.metrics(),
                          tokens=int(batch["attention_mask"].sum()))
