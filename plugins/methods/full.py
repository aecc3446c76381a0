"""Full fine-tuning: every weight trains with AdamW; the result is a whole model."""

from typing import Any

from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.train.method import MethodContext, TrainingMethod


class FullMethod(TrainingMethod):
    """Every parameter trains; the run gets a whole model with its tokenizer."""

    name = "full"
    output = "model"

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Make every parameter trainable."""
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model


@hookimpl
def register_methods(register):
    """Register full fine-tuning."""
    register(Method("full", "Full fine-tuning: all weights, AdamW (needs ~16 bytes per parameter)",
                    defaults={"learning_rate": 2e-5}, build=FullMethod))
