"""Llama 2, Llama 3, 3.1 and 3.2 (Meta): RMSNorm, SwiGLU, RoPE, grouped-query attention."""

from llmctl.chat_templates import LLAMA3
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_L2 = {"rms_norm_eps": 1e-5, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2}
_L3 = {"rms_norm_eps": 1e-5, "rope_theta": 500000.0, "bos_token_id": 128000, "eos_token_id": 128001}
_L31 = {**_L3, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
_L32 = {**_L31, "rope_scaling": {**_L31["rope_scaling"], "factor": 32.0}, "tie_word_embeddings": True}


def _pair(name: str, hub: str, config: dict, aliases: tuple = (), chat_suffix: str = "-chat",
          chat_hub: str | None = None) -> tuple[ModelSpec, ModelSpec]:
    base = ModelSpec(name, hub, config, aliases=aliases, gated=True)
    chat = ModelSpec(f"{name}{chat_suffix}", chat_hub or f"{hub}-Instruct", config, instruct=True, gated=True)
    return base, chat


def _l2(hidden: int, inter: int, layers: int, heads: int, kv: int) -> dict:
    return decoder_config("llama", hidden, inter, layers, heads, kv, 32000, 4096, **_L2)


def _l3(hidden: int, inter: int, layers: int, heads: int, kv: int, extra: dict, context: int) -> dict:
    return decoder_config("llama", hidden, inter, layers, heads, kv, 128256, context, **extra)


MODELS = (
    *_pair("llama-2-7b", "meta-llama/Llama-2-7b-hf", _l2(4096, 11008, 32, 32, 32), ("llama2-7b",),
           chat_hub="meta-llama/Llama-2-7b-chat-hf"),
    *_pair("llama-2-13b", "meta-llama/Llama-2-13b-hf", _l2(5120, 13824, 40, 40, 40), ("llama2-13b",),
           chat_hub="meta-llama/Llama-2-13b-chat-hf"),
    *_pair("llama-2-70b", "meta-llama/Llama-2-70b-hf", _l2(8192, 28672, 80, 64, 8), ("llama2-70b",),
           chat_hub="meta-llama/Llama-2-70b-chat-hf"),
    *_pair("llama-3-8b", "meta-llama/Meta-Llama-3-8B", _l3(4096, 14336, 32, 32, 8, _L3, 8192), ("llama3-8b",),
           chat_suffix="-instruct"),
    *_pair("llama-3-70b", "meta-llama/Meta-Llama-3-70B", _l3(8192, 28672, 80, 64, 8, _L3, 8192),
           ("llama3-70b",), chat_suffix="-instruct"),
    *_pair("llama-3.1-8b", "meta-llama/Llama-3.1-8B", _l3(4096, 14336, 32, 32, 8, _L31, 131072),
           ("llama3.1-8b",), chat_suffix="-instruct"),
    *_pair("llama-3.1-70b", "meta-llama/Llama-3.1-70B", _l3(8192, 28672, 80, 64, 8, _L31, 131072),
           ("llama3.1-70b",), chat_suffix="-instruct"),
    *_pair("llama-3.1-405b", "meta-llama/Llama-3.1-405B", _l3(16384, 53248, 126, 128, 8, _L31, 131072),
           ("llama3.1-405b",), chat_suffix="-instruct"),
    *_pair("llama-3.2-1b", "meta-llama/Llama-3.2-1B", _l3(2048, 8192, 16, 32, 8, _L32, 131072),
           ("llama3.2-1b",), chat_suffix="-instruct"),
    *_pair("llama-3.2-3b", "meta-llama/Llama-3.2-3B", _l3(3072, 8192, 28, 24, 8, _L32, 131072),
           ("llama3.2-3b",), chat_suffix="-instruct"),
)


@hookimpl
def register_families(register):
    """Register the Llama family."""
    register(Family(
        name="llama",
        description="Meta Llama 2, 3, 3.1 and 3.2",
        model_types=("llama",),
        models=MODELS,
        lora_target_modules=DECODER_ATTENTION + DECODER_MLP,
        tiny_config=tiny_config("llama"),
        chat_template=LLAMA3,
        finetune_defaults={"lora_r": 16, "lora_alpha": 32},
        gguf_architecture="llama",
        gguf=(GGUFMapping("llama", model_types=("llama",), permute_qk=True, pre_tokenizer="llama-bpe",
                         rope_freqs=True),),
    ))
