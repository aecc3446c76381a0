"""Mixtral: sparse mixture of experts, 8 experts per layer with the router picking two per token."""

from llmctl.chat_templates import MISTRAL
from llmctl.descriptors import Family, GGUFMapping, ModelSpec
from llmctl.family_configs import DECODER_ATTENTION, decoder_config, tiny_config
from llmctl.hookspecs import hookimpl

_MOE = {"num_local_experts": 8, "num_experts_per_tok": 2, "rms_norm_eps": 1e-5, "bos_token_id": 1,
        "eos_token_id": 2}
_8X7B = decoder_config("mixtral", 4096, 14336, 32, 32, 8, 32000, 32768, rope_theta=1000000.0, **_MOE)
_8X22B = decoder_config("mixtral", 6144, 16384, 56, 48, 8, 32768, 65536, rope_theta=1000000.0, **_MOE)


def _mixtral_gguf_metadata(config):
    """Mixtral: how many experts each layer has and how many the router picks per token."""
    return {"{arch}.expert_count": int(config["num_local_experts"]),
            "{arch}.expert_used_count": int(config["num_experts_per_tok"])}


# llama.cpp runs Mixtral as a Llama with experts: q/k permuted, the router (block_sparse_moe.gate) as ffn_gate_inp and
# each layer's per-expert w1/w3/w2 stacked into ffn_gate_exps/ffn_up_exps/ffn_down_exps (see plan_tensors).
MIXTRAL_GGUF = (GGUFMapping("llama", model_types=("mixtral",), permute_qk=True, metadata=_mixtral_gguf_metadata),)


@hookimpl
def register_families(register):
    """Register the Mixtral family."""
    register(Family(
        name="mixtral",
        description="Mixtral 8x7B / 8x22B sparse mixture of experts",
        model_types=("mixtral",),
        models=(
            ModelSpec("mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1", _8X7B),
            ModelSpec("mixtral-8x7b-instruct", "mistralai/Mixtral-8x7B-Instruct-v0.1", _8X7B, instruct=True),
            ModelSpec("mixtral-8x22b", "mistralai/Mixtral-8x22B-v0.1", _8X22B),
            ModelSpec("mixtral-8x22b-instruct", "mistralai/Mixtral-8x22B-Instruct-v0.1", _8X22B, instruct=True),
        ),
        lora_target_modules=DECODER_ATTENTION,
        lora_target_parameters=("experts.gate_up_proj", "experts.down_proj"),
        dora_target_modules=DECODER_ATTENTION,
        finetune_defaults={"lora_dropout": 0.0},  # peft's expert-parameter LoRA (ParamWrapper) has no dropout
        tiny_config=tiny_config("mixtral", num_local_experts=4, num_experts_per_tok=2),
        chat_template=MISTRAL,
        gguf_architecture="llama",
        gguf=MIXTRAL_GGUF,
    ))
