"""LoRA-family methods on the shared loop (imported only when a run uses one): peft does the adapters."""

from __future__ import annotations

from typing import Any

from llmctl.errors import DataError
from llmctl.train.method import MethodContext, TrainingMethod, adamw_options


def lora_config(kind: str, settings: Any, family: Any) -> Any:
    """The peft ``LoraConfig`` for ``kind`` with the family's targets (Mixtral: expert parameters; DoRA: attention)."""
    from peft import LoraConfig

    dora = kind == "dora"
    chosen = [m.strip() for m in str(settings["target_modules"]).split(",") if m.strip()]
    parameters: list[str] = []
    if chosen:
        targets: Any = chosen
    elif family is None:
        targets = "all-linear"
    else:
        targets = list(family.dora_target_modules or family.lora_target_modules) if dora else list(
            family.lora_target_modules)
        parameters = [] if dora else list(family.lora_target_parameters)
    return LoraConfig(r=settings["lora_r"], lora_alpha=settings["lora_alpha"], lora_dropout=settings["lora_dropout"],
                      target_modules=targets, target_parameters=parameters or None, use_dora=dora, bias="none",
                      task_type="CAUSAL_LM")


def wrap_in_adapter(model: Any, config: Any, kind: str) -> Any:
    """``model`` in a peft adapter from ``config``, its plain LoRA layers on the fused CPU branch (_lora_dropout).

    A model the adapter does not fit is one line naming ``kind``.
    """
    from llmctl_plugins.methods._lora_dropout import install
    from peft import get_peft_model

    try:
        wrapped = get_peft_model(model, config)
    except ValueError as error:
        raise DataError(f"cannot place {kind} adapters on this model: {error}") from None
    install(wrapped)
    return wrapped


class LoraMethod(TrainingMethod):
    """``lora``, ``lora+``, ``dora`` or ``qlora``: a peft adapter on a frozen base."""

    output = "adapter"

    def __init__(self, kind: str = "lora") -> None:
        self.kind = kind
        self.name = kind

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
