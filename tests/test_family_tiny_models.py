"""Every builtin family's tiny configuration builds a working random model in milliseconds."""

from __future__ import annotations

import pytest

from llmctl.models.params import build_config, count_parameters
from llmctl.plugins import get_registry

FAMILIES = [f.name for f in get_registry().all("family")]


@pytest.mark.parametrize("family_name", FAMILIES)
def test_tiny_config_builds_a_model_that_predicts_the_vocabulary(family_name):
    import torch
    from transformers import AutoModelForCausalLM

    family = get_registry().family(family_name)
    config = build_config(family.tiny_config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    ids = torch.randint(3, config.vocab_size, (2, 10))
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (2, 10, config.vocab_size)
    assert torch.isfinite(logits).all()
    assert sum(p.numel() for p in model.parameters()) == count_parameters(family.tiny_config).total


@pytest.mark.parametrize("family_name", FAMILIES)
def test_every_named_model_has_a_readable_config(family_name):
    family = get_registry().family(family_name)
    assert family.models and family.lora_target_modules
    for spec in family.models:
        assert spec.config["model_type"]
        assert get_registry().resolve_model(spec.name) == (family, spec)
