"""Parameter counts computed from a model's config alone: the model is built on the meta device, no weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmctl.descriptors import Family, ParameterCount


def build_config(config: Mapping[str, Any]) -> Any:
    """A transformers ``PretrainedConfig`` from a ``config.json`` dictionary."""
    from transformers import AutoConfig

    values = dict(config)
    model_type = values.pop("model_type")
    values.pop("architectures", None)
    return AutoConfig.for_model(model_type, **values)


def count_parameters(config: Mapping[str, Any], family: Family | None = None) -> ParameterCount:
    """Total and per-token active parameters; mixture-of-experts layers count only the routed experts as active."""
    if family is not None and family.count_parameters is not None:
        return family.count_parameters(config)
    import torch
    from transformers import AutoModelForCausalLM

    hf_config = build_config(config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    total = expert = embedding = 0
    for name, parameter in model.named_parameters():
        total += parameter.numel()
        if ".experts." in name:
            expert += parameter.numel()
        if name.endswith("embed_tokens.weight"):
            embedding += parameter.numel()
    experts = config.get("num_local_experts") or config.get("num_experts") or 0
    per_token = config.get("num_experts_per_tok") or 0
    active = total - expert + (expert * per_token // experts if experts else 0) if experts else total
    return ParameterCount(total=total, active=active, embedding=embedding)
