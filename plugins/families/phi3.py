"""Phi-3 (Microsoft): fused qkv and gate/up projections, trained on filtered and synthetic data."""

from llmctl.chat_templates import PHI3
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_PHI = {"rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 32000, "pad_token_id": 32000}
_MINI = decoder_config("phi3", 3072, 8192, 32, 32, 32, 32064, 4096, **_PHI)
_MINI_128K = {**_MINI, "max_position_embeddings": 131072}
_MEDIUM = decoder_config("phi3", 5120, 17920, 40, 40, 10, 32064, 4096, **_PHI)


def _phi3_gguf_metadata(config):
    """Phi-3: rotary dimensions (partial rotary factor), original context length and sliding window (0: none).

    llama.cpp reads the sliding window but does not apply it to phi3 (it logs "Phi SWA is currently disabled"), so
    beyond the window (2047 tokens for Phi-3 mini) its logits differ from transformers'. The 128k models' LongRoPE
    is refused before this is asked, like any rope scaling the export cannot write (``rope_scaling.rope_tensors``).
    """
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    heads = int(config["num_attention_heads"])
    fraction = float(rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 1.0)))
    context = int(config.get("original_max_position_embeddings") or config.get("max_position_embeddings") or 4096)
    return {"{arch}.rope.dimension_count": int(fraction * int(config["hidden_size"])) // heads,
            "{arch}.rope.scaling.original_context_length": context,
            "{arch}.attention.sliding_window": int(config.get("sliding_window") or 0)}


# The gguf library's phi3 map already names the fused qkv_proj attn_qkv and gate_up_proj ffn_up (gate half first,
# as llama.cpp's fused SwiGLU expects); phi3 rotates NEOX-style, so q/k rows stay as they are.
PHI3_GGUF = (GGUFMapping("phi3", model_types=("phi3",), metadata=_phi3_gguf_metadata),)


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
        gguf=PHI3_GGUF,
    ))
