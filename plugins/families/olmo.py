"""OLMo and OLMo 2 (AI2): fully open models; OLMo 1 uses non-parametric layer norm."""

from llmctl.chat_templates import OLMO
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_O1 = {"bos_token_id": None, "eos_token_id": 50279, "pad_token_id": 1}
_1B = decoder_config("olmo", 2048, 8192, 16, 16, 16, 50304, 2048, tie_word_embeddings=True, **_O1)
_7B = decoder_config("olmo", 4096, 11008, 32, 32, 32, 50304, 2048, **_O1)
_2_7B = decoder_config("olmo2", 4096, 11008, 32, 32, 32, 100352, 4096, rms_norm_eps=1e-6, rope_theta=500000.0,
                       eos_token_id=100257, pad_token_id=100277)


def _olmo_gguf_metadata(config):
    """OLMo 1: the epsilon of its non-parametric layer norm, and the q/k/v clamp when the model clips them."""
    metadata = {"{arch}.attention.layer_norm_epsilon": 1e-5}
    if config.get("clip_qkv") is not None:
        metadata["{arch}.attention.clamp_kqv"] = float(config["clip_qkv"])
    return metadata


# OLMo 1's layer norms have no weights, so there are no norm tensors to name; it rotates q/k like Llama (permuted).
OLMO_GGUF = (GGUFMapping("olmo", model_types=("olmo",), permute_qk=True, metadata=_olmo_gguf_metadata),)


@hookimpl
def register_families(register):
    """Register the OLMo family."""
    register(Family(
        name="olmo",
        description="AI2 OLMo 1B / 7B and OLMo 2 7B",
        model_types=("olmo", "olmo2"),
        models=(
            ModelSpec("olmo-1b", "allenai/OLMo-1B-hf", _1B),
            ModelSpec("olmo-7b", "allenai/OLMo-7B-hf", _7B),
            ModelSpec("olmo-2-7b", "allenai/OLMo-2-1124-7B", _2_7B, aliases=("olmo2-7b",)),
            ModelSpec("olmo-2-7b-instruct", "allenai/OLMo-2-1124-7B-Instruct", _2_7B, instruct=True,
                      aliases=("olmo2-7b-instruct",)),
        ),
        lora_target_modules=DECODER_ATTENTION + DECODER_MLP,
        tiny_config=tiny_config("olmo"),
        chat_template=OLMO,
        gguf_architecture="olmo",
        gguf=OLMO_GGUF,
    ))
