"""Full fine-tuning on the shared loop (imported only when a run uses it)."""

from __future__ import annotations

from typing import Any

from llmctl.train.method import MethodContext, TrainingMethod


class FullMethod(TrainingMethod):
    """Every parameter trains; ``save`` writes a whole model with its tokenizer."""

    name = "full"
    output = "model"

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Make every parameter trainable."""
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
