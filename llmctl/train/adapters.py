"""Adapters for training: peft LoRA/DoRA on a family's projections, or every weight with a frozen reference copy.

Public: a method plugin that trains an adapter (LoRA, DoRA, the alignment methods) builds it here, so every method
places adapters the same way. :class:`AdapterSettings` declares the settings that choose the adapter; a method's
settings dataclass inherits it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from llmctl.config import Range
from llmctl.errors import DataError
from llmctl.settings_schema import setting

ADAPTERS = ("lora", "dora", "none")


@dataclass
class LoraSettings:
    """The shape of a LoRA adapter (a method's settings dataclass inherits these fields)."""

    lora_r: int = setting(8, "adapter rank", range=Range(1))
    lora_alpha: float = setting(16, "adapter scale numerator (scale = alpha / r)", range=Range(0, low_open=True))
    lora_dropout: float = setting(0.05, "dropout on the adapter input", range=Range(0, 1, high_open=True))
    target_modules: str = setting("", "comma-separated module names (empty: the family's defaults)")


@dataclass
class AdapterSettings(LoraSettings):
    """LoRA settings plus the choice of adapter, for methods that can also train every weight."""

    adapter: str = setting("lora", "lora, dora or none (none trains every weight and keeps a frozen reference copy)",
                           choices=ADAPTERS)
    lora_dropout: float = setting(0.0, "dropout on the adapter input", range=Range(0, 1, high_open=True))


def lora_config(kind: str, settings: Any, family: Any, task_type: str = "CAUSAL_LM") -> Any:
    """The peft ``LoraConfig`` for ``kind`` (lora, dora …) with the family's targets.

    ``target_modules`` (a setting) wins; else the family's LoRA targets (Mixtral: its expert parameters too) or,
    for DoRA, its DoRA targets (attention only where DoRA cannot wrap experts); with no family, every linear layer.
    """
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
                      task_type=task_type)


def wrap_in_adapter(model: Any, config: Any, kind: str) -> Any:
    """``model`` in a peft adapter from ``config``; plain LoRA layers train on the fused CPU branch.

    (See :mod:`llmctl.train.cpu_lora_branch`.) A model the adapter does not fit is one line naming ``kind``.
    """
    from peft import get_peft_model

    from llmctl.train.cpu_lora_branch import install

    try:
        wrapped = get_peft_model(model, config)
    except ValueError as error:
        raise DataError(f"cannot place {kind} adapters on this model: {error}") from None
    install(wrapped)
    return wrapped


def wrap_for_training(model: Any, settings: Any, context: Any, task_type: str = "CAUSAL_LM") -> tuple[Any, Any]:
    """(trainable model, frozen reference or None) as the ``adapter`` setting asks.

    ``lora``/``dora``: a peft adapter (the reference is the model with the adapter switched off, see
    :mod:`llmctl.train.reference`); ``none``: every weight trains and a frozen copy is the reference.
    """
    adapter = settings["adapter"]
    if adapter not in ADAPTERS:
        raise DataError(f"setting 'adapter' must be one of {', '.join(ADAPTERS)}, got {adapter!r}")
    if adapter == "none":
        reference = copy.deepcopy(model).eval().requires_grad_(False)
        return model.requires_grad_(True), reference
    config = lora_config(adapter, settings, context.family, task_type)
    return wrap_in_adapter(model, config, adapter), None


def adapter_output(settings: Any) -> str:
    """What a run of an adapter-choosing method writes: ``model`` for ``adapter=none``, else ``adapter``."""
    return "model" if settings["adapter"] == "none" else "adapter"
