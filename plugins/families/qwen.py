"""Qwen 2.5 (Alibaba): grouped-query attention with biased q/k/v projections, 152k vocabulary."""

from llmctl.chat_templates import CHATML
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_Q = {"rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "bos_token_id": 151643, "eos_token_id": 151645}
_0_5B = decoder_config("qwen2", 896, 4864, 24, 14, 2, 151936, 32768, **{**_Q, "tie_word_embeddings": True})
_1_5B = decoder_config("qwen2", 1536, 8960, 28, 12, 2, 151936, 32768, **{**_Q, "tie_word_embeddings": True})
_3B = decoder_config("qwen2", 2048, 11008, 36, 16, 2, 151936, 32768, **{**_Q, "tie_word_embeddings": True})
_7B = decoder_config("qwen2", 3584, 18944, 28, 28, 4, 152064, 32768, **_Q)


def _both(size: str, config: dict) -> tuple[ModelSpec, ModelSpec]:
    return (
        ModelSpec(f"qwen2.5-{size}", f"Qwen/Qwen2.5-{size.upper()}", config, aliases=(f"qwen-2.5-{size}",)),
        ModelSpec(f"qwen2.5-{size}-instruct", f"Qwen/Qwen2.5-{size.upper()}-Instruct", config, instruct=True,
                  aliases=(f"qwen-2.5-{size}-instruct",)),
    )


@hookimpl
def register_families(register):
    """Register the Qwen 2.5 family."""
    register(Family(
        name="qwen2",
        description="Alibaba Qwen 2.5 0.5B to 7B",
        model_types=("qwen2",),
        models=(*_both("0.5b", _0_5B), *_both("1.5b", _1_5B), *_both("3b", _3B), *_both("7b", _7B)),
        lora_target_modules=DECODER_ATTENTION + DECODER_MLP,
        tiny_config=tiny_config("qwen2"),
        chat_template=CHATML,
        gguf_architecture="qwen2",
        gguf=(GGUFMapping("qwen2", model_types=("qwen2",), pre_tokenizer="qwen2"),),
    ))
