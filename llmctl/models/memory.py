"""Memory estimates from a parameter count and a config, before anything is loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmctl.descriptors import ParameterCount

BYTES_PER_PARAMETER = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.0, "int4": 0.5}
OVERHEAD = 1.10  # allocator slack, buffers, runtime


@dataclass(frozen=True)
class MemoryEstimate:
    """One row of a memory table."""

    label: str
    bytes: int
    note: str


def kv_cache_bytes(config: Mapping[str, Any], tokens: int, bytes_per_value: float = 2.0) -> int:
    """Key/value cache size for ``tokens`` tokens of context."""
    layers = config.get("num_hidden_layers", 0)
    heads = config.get("num_attention_heads") or 1
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or (config.get("hidden_size", 0) // heads)
    return int(2 * layers * kv_heads * head_dim * tokens * bytes_per_value)


def inference_bytes(params: ParameterCount, config: Mapping[str, Any], dtype: str, context: int = 4096) -> int:
    """Weights at ``dtype`` plus a bf16 KV cache for ``context`` tokens, with runtime overhead."""
    weights = params.total * BYTES_PER_PARAMETER[dtype]
    return int((weights + kv_cache_bytes(config, context)) * OVERHEAD)


def lora_parameters(config: Mapping[str, Any], rank: int = 16) -> int:
    """Approximate LoRA parameters with adapters on every attention and MLP projection."""
    hidden = config.get("hidden_size", 0)
    intermediate = config.get("intermediate_size", 4 * hidden)
    layers = config.get("num_hidden_layers", 0)
    per_layer = rank * (4 * 2 * hidden + 3 * (hidden + intermediate))
    return layers * per_layer


def activation_bytes(config: Mapping[str, Any], batch_tokens: int, checkpointing: bool = True) -> int:
    """A rough activation footprint for training on ``batch_tokens`` tokens (bf16)."""
    hidden = config.get("hidden_size", 0)
    layers = config.get("num_hidden_layers", 0)
    per_token_layer = hidden * (2 if checkpointing else 34)
    return int(batch_tokens * layers * per_token_layer * 2 + batch_tokens * config.get("vocab_size", 0) * 4)


def memory_table(params: ParameterCount, config: Mapping[str, Any], batch_tokens: int = 2048) -> list[MemoryEstimate]:
    """Inference at bf16/int8/int4 and fine-tuning with LoRA, QLoRA and full weights."""
    rank = 16
    adapter = lora_parameters(config, rank)
    activations = activation_bytes(config, batch_tokens)
    rows = [
        MemoryEstimate(f"inference {dtype}", inference_bytes(params, config, dtype), "weights + 4k-token KV cache")
        for dtype in ("bfloat16", "int8", "int4")
    ]
    lora = params.total * 2 + adapter * 16 + activations
    qlora = params.total * 0.56 + adapter * 16 + activations
    full = params.total * 16 + activations
    rows += [
        MemoryEstimate("fine-tune LoRA (bf16)", int(lora * OVERHEAD),
                       f"r={rank} on all projections, {batch_tokens} tokens/step, gradient checkpointing"),
        MemoryEstimate("fine-tune QLoRA (4-bit)", int(qlora * OVERHEAD), "nf4 base weights, CUDA only"),
        MemoryEstimate("fine-tune full (AdamW)", int(full * OVERHEAD),
                       "bf16 weights + grads, fp32 master weights and two Adam moments"),
    ]
    return rows


def human_bytes(count: float) -> str:
    """``1.2 GiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} TiB"


def human_count(count: int) -> str:
    """``8.54 B``-style parameter count."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return str(count)
