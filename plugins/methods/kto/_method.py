"""KTO on the shared loop: the reference is the base with the adapter disabled (no second copy)."""

from __future__ import annotations

from typing import Any

from llmctl.models.tokens import pad_token_id
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod
from llmctl.train.reference import ReferencePolicyMethod


class KtoMethod(ReferencePolicyMethod, TrainingMethod):
    """Alignment from unpaired completions labelled desirable or undesirable."""

    name = "kto"

    def __init__(self) -> None:
        self.max_length: int | None = None

    def check_data(self, settings: Any, context: MethodContext) -> int:
        """Check every row of the data file without a tokenizer (``--dry-run``); the number of rows."""
        from llmctl_plugins.methods.kto._data import count_kto

        return count_kto(settings, context)

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """Labelled rows, checked with file:line errors and encoded with the chat template."""
        from llmctl_plugins.methods.kto._data import load_kto_data

        self.max_length = settings["max_length"]
        return load_kto_data(settings, context)

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """Rows, their mismatched KL rows and labels."""
        from llmctl_plugins.methods.kto._data import collate_kto

        return collate_kto(items, pad_token_id(context.tokenizer), self.max_length)

    def count(self, batch: dict[str, Any]) -> int:
        """Loss units are rows."""
        return int(batch["input_ids"].shape[0])

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """Summed KTO loss over the batch's rows, with the KL reference point and rewards as metrics."""
        from llmctl_plugins.methods.kto._loss import kto_batch_loss

        reference = self.reference_model(model)
        result = kto_batch_loss(model, batch, settings["beta"], settings["desirable_weight"],
                                settings["undesirable_weight"], reference_model=reference)
        return LossOutput(result.losses.sum(), self.count(batch), result.metrics(),
                          tokens=int(batch["attention_mask"].sum()))
