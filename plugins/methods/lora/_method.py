"""LoRA-family methods on the shared loop (imported only when a run uses one): peft does the adapters.

The adapter itself is placed by :mod:`llmctl.train.adapters`, as for every method that trains one.
"""

from __future__ import annotations

from typing import Any

from llmctl.train.adapters import lora_config, wrap_in_adapter
from llmctl.train.method import MethodContext, TrainingMethod, adamw_options


class LoraMethod(TrainingMethod):
    """``lora``, ``lora+``, ``dora`` or ``qlora``: a peft adapter on a frozen base."""

    def __init__(self, kind: str = "lora") -> None:
        self.kind = kind
        self.name = kind  # type: ignore[misc]

    def load_model(self, settings: Any, context: MethodContext) -> Any:
        """QLoRA: the base in 4 bits through bitsandbytes, made ready for k-bit training; others: default loading."""
        if self.kind != "qlora":
            return None
        import torch
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=settings["quant_type"],
                                          bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_use_double_quant=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(context.model_dir), quantization_config=quantization, device_map={"": context.device},
            trust_remote_code=context.extra.get("trust_remote_code", False))
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=settings["gradient_checkpointing"])

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Wrap ``model`` in a peft adapter; only the adapter trains."""
        return wrap_in_adapter(model, lora_config(self.kind, settings, context.family), self.kind)

    def make_optimizer(self, model: Any, settings: Any) -> Any:
        """AdamW; for LoRA+ peft's optimizer with B matrices at ``loraplus_ratio`` × the learning rate."""
        if self.kind != "lora+":
            return super().make_optimizer(model, settings)
        import torch
        from peft.optimizers import create_loraplus_optimizer

        return create_loraplus_optimizer(model=model, optimizer_cls=torch.optim.AdamW, lr=settings["learning_rate"],
                                         loraplus_lr_ratio=settings["loraplus_ratio"],
                                         weight_decay=settings["weight_decay"],
                                         **adamw_options([p for _, p in self.trainable_parameters(model)]))
