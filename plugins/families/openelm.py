"""OpenELM (Apple): layer-wise scaling, so heads and FFN width grow with depth. Custom code: trust_remote_code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmctl.descriptors import Family, ModelSpec, ParameterCount
from llmctl.family_configs import tiny_config
from llmctl.hookspecs import hookimpl


def _make_divisible(value: float, divisor: int) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _linspace(start: float, stop: float, count: int) -> list[float]:
    if count == 1:
        return [start]
    return [round(start + (stop - start) * i / (count - 1), 2) for i in range(count)]


def count_openelm_parameters(config: Mapping[str, Any]) -> ParameterCount:
    """Parameters of an OpenELM model from its config, following its layer-wise scaling rule."""
    dim, head_dim, groups = config["model_dim"], config["head_dim"], config["num_gqa_groups"]
    layers = config["num_transformer_layers"]
    total = 0
    qkv = _linspace(*config["qkv_multipliers"], layers)
    ffn = _linspace(*config["ffn_multipliers"], layers)
    for q_mult, f_mult in zip(qkv, ffn, strict=True):
        query_heads = _make_divisible(dim * q_mult, head_dim * groups) // head_dim
        kv_heads = query_heads // groups
        total += dim * (query_heads + 2 * kv_heads) * head_dim + query_heads * head_dim * dim
        total += 2 * head_dim if config.get("normalize_qk_projections", True) else 0
        intermediate = _make_divisible(f_mult * dim, config.get("ffn_dim_divisor", 256))
        total += dim * 2 * intermediate + intermediate * dim + 2 * dim
    embedding = config["vocab_size"] * dim
    total += embedding + dim
    if not config.get("share_input_output_layers", True):
        total += embedding
    return ParameterCount(total=total, active=total, embedding=embedding)


def _config(dim: int, layers: int, head_dim: int) -> dict[str, Any]:
    return {
        "model_type": "openelm", "model_dim": dim, "num_transformer_layers": layers, "head_dim": head_dim,
        "num_gqa_groups": 4, "qkv_multipliers": [0.5, 1.0], "ffn_multipliers": [0.5, 4.0], "ffn_dim_divisor": 256,
        "vocab_size": 32000, "max_context_length": 2048, "share_input_output_layers": True,
        "normalize_qk_projections": True, "ffn_with_glu": True,
        # summary fields in the usual names, for `llmctl info`
        "hidden_size": dim, "num_hidden_layers": layers, "max_position_embeddings": 2048,
    }


@hookimpl
def register_families(register):
    """Register the OpenELM family."""
    models = []
    for size, dim, layers, head_dim in (("270m", 1280, 16, 64), ("450m", 1536, 20, 64), ("1.1b", 2048, 28, 64),
                                        ("3b", 3072, 36, 128)):
        hub = f"apple/OpenELM-{size.upper()}"
        models.append(ModelSpec(f"openelm-{size}", hub, _config(dim, layers, head_dim)))
        models.append(ModelSpec(f"openelm-{size}-instruct", f"{hub}-Instruct", _config(dim, layers, head_dim),
                                instruct=True))
    register(Family(
        name="openelm",
        description="Apple OpenELM 270M to 3B (layer-wise scaling; needs --trust-remote-code)",
        model_types=("openelm",),
        models=tuple(models),
        lora_target_modules=("qkv_proj", "out_proj", "proj_1", "proj_2"),
        # OpenELM's modelling code lives on the hub; tests use a Llama-shaped stand-in of the same size class.
        tiny_config=tiny_config("llama"),
        trust_remote_code=True,
        count_parameters=count_openelm_parameters,
    ))
