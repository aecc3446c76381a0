"""TinyLlama 1.1B: the Llama 2 architecture trained on 3T tokens."""

from llmctl.chat_templates import CHATML
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_CONFIG = decoder_config("llama", 2048, 5632, 22, 32, 4, 32000, 2048, rms_norm_eps=1e-5, bos_token_id=1,
                         eos_token_id=2)


@hookimpl
def register_families(register):
    """Register the TinyLlama family."""
    register(Family(
        name="tinyllama",
        description="TinyLlama 1.1B (Llama 2 architecture)",
        model_types=(),
        models=(
            ModelSpec("tinyllama-1.1b", "TinyLlama/TinyLlama_v1.1", _CONFIG, aliases=("tinyllama",)),
            ModelSpec("tinyllama-1.1b-chat", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", _CONFIG, instruct=True,
                      aliases=("tinyllama-chat",)),
        ),
        lora_target_modules=DECODER_ATTENTION + DECODER_MLP,
        tiny_config=tiny_config("llama", num_key_value_heads=1),
        chat_template=CHATML,
        gguf_architecture="llama",
        gguf=(GGUFMapping("llama", permute_qk=True),),
    ))
