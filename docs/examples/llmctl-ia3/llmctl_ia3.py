"""An example llmctl method plugin: IA3, peft's (IA)^3 adapter, trained by llmctl's own loop.

IA3 learns one scaling vector per targeted layer (thousands of weights where LoRA trains millions). Everything but
``prepare`` is the loop's default supervised fine-tuning, so the run folder gets a peft adapter that
``llmctl chat BASE --adapter RUN`` loads. Heavy imports (peft) happen inside ``prepare``: listing plugins stays fast.
"""

from dataclasses import dataclass
from typing import Any

from llmctl.api import DataError, Method, MethodContext, TrainingMethod, hookimpl, setting

FEEDFORWARD = ("down_proj", "fc2", "w2")  # layers whose input IA3 scales (the MLP's output projection)


@dataclass
class IA3Settings:
    """IA3's settings. A field named like a loop setting is this method's default for it, ahead of the family's."""

    learning_rate: float = 1e-2
    precision: str = "fp32"  # IA3's small updates vanish under bf16 autocast: train in fp32 everywhere
    target_modules: str = setting("", "comma-separated module names (empty: the family's LoRA targets)")


class IA3Method(TrainingMethod):
    """Supervised fine-tuning of IA3 scaling vectors on a frozen base model."""

    name = "ia3"
    output = "adapter"

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Wrap ``model`` in IA3 adapters on the family's projections; only the vectors train."""
        from peft import IA3Config, get_peft_model

        targets = [m.strip() for m in settings["target_modules"].split(",") if m.strip()]
        if not targets:
            targets = list(context.family.lora_target_modules) if context.family else ["k_proj", "v_proj", "down_proj"]
        config = IA3Config(target_modules=targets, feedforward_modules=[m for m in targets if m in FEEDFORWARD],
                           task_type="CAUSAL_LM")
        try:
            return get_peft_model(model, config)
        except ValueError as error:
            raise DataError(f"cannot place IA3 adapters on this model: {error}") from None


@hookimpl
def register_methods(register):
    """Register the ``ia3`` method."""
    register(Method(
        name="ia3",
        description="IA3: learned scaling vectors on the family's projections (peft; example plugin)",
        settings=IA3Settings,
        build=IA3Method,
    ))
