"""Phi-3 (Microsoft): fused qkv and gate/up projections, trained on filtered and synthetic data."""

from llmctl_plugins.families._configs import decoder_config, tiny_config
from llmctl_plugins.families._templates import PHI3

from llmctl.descriptors import Family, ModelSpec
from llmctl.hookspecs import hookimpl

_PHI = {"rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 32000, "pad_token_id": 32000}
_MINI = decoder_config("phi3", 3072, 8192, 32, 32, 32, 32064, 4096, **_PHI)
_MINI_128K = {**_MINI, "max_position_embeddings": 131072}
_MEDIUM = decoder_config("phi3", 5120, 17920, 40, 40, 10, 32064, 4096, **_PHI)


@hookimpl
def register_families(register):
    """Register the Phi-3 family."""
    register(Family(
        name="phi3",
        description="Microsoft Phi-3 mini (3.8B) and medium (14B)",
        model_types=("phi3",),
        models=(
            ModelSpec("phi-3-mini", "microsoft/Phi-3-mini-4k-instruct", _MINI, instruct=True,
                      aliases=("phi3-mini", "phi-3-mini-4k")),
            ModelSpec("phi-3-mini-128k", "microsoft/Phi-3-mini-128k-instruct", _MINI_128K, instruct=True,
                      aliases=("phi3-mini-128k",)),
            ModelSpec("phi-3-medium", "microsoft/Phi-3-medium-4k-instruct", _MEDIUM, instruct=True,
                      aliases=("phi3-medium",)),
        ),
        lora_target_modules=("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
        tiny_config=tiny_config("phi3"),
        chat_template=PHI3,
        gguf_architecture="phi3",
    ))
