"""Mistral 7B: grouped-query attention and sliding-window attention."""

from llmctl.chat_templates import MISTRAL
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_V01 = decoder_config("mistral", 4096, 14336, 32, 32, 8, 32000, 32768, sliding_window=4096, rms_norm_eps=1e-5,
                      rope_theta=10000.0, bos_token_id=1, eos_token_id=2)
_V03 = {**_V01, "vocab_size": 32768, "sliding_window": None, "rope_theta": 1000000.0}


@hookimpl
def register_families(register):
    """Register the Mistral family."""
    register(Family(
        name="mistral",
        description="Mistral 7B v0.1 / v0.3 (GQA, sliding-window attention)",
        model_types=("mistral",),
        models=(
            ModelSpec("mistral-7b", "mistralai/Mistral-7B-v0.1", _V01, aliases=("mistral-7b-v0.1",)),
            ModelSpec("mistral-7b-instruct", "mistralai/Mistral-7B-Instruct-v0.3", _V03, instruct=True,
                      aliases=("mistral-7b-instruct-v0.3", "mistral-7b-chat"), gated=True),
            ModelSpec("mistral-7b-v0.3", "mistralai/Mistral-7B-v0.3", _V03, gated=True),
        ),
        lora_target_modules=DECODER_ATTENTION + DECODER_MLP,
        tiny_config=tiny_config("mistral", sliding_window=64),
        chat_template=MISTRAL,
        gguf_architecture="llama",
        gguf=(GGUFMapping("llama", model_types=("mistral",), permute_qk=True),),
    ))
