"""Builders for the ``config.json`` dictionaries a model family describes its models with (public API).

A family plugin lists its models' configurations (``ModelSpec.config``, read by ``llmctl info`` and the memory
estimates) and a ``tiny_config`` that tests build a random model from in milliseconds. Most decoder-only models
share transformers' field names, so ``decoder_config`` writes them from a few numbers and ``tiny_config`` gives the
small shape every builtin family uses for its tests::

    from llmctl.api import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config

    MY_7B = decoder_config("llama", hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32,
                           vocab=32000, context=4096, rope_theta=10000.0)
    TINY = tiny_config("llama")            # 2 layers, hidden 64, vocabulary 512: pad 0, bos 1, eos 2

``DECODER_ATTENTION`` and ``DECODER_MLP`` are the usual projection names, a family's default LoRA targets.
"""

from __future__ import annotations

from typing import Any

DECODER_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
DECODER_MLP = ("gate_proj", "up_proj", "down_proj")


def decoder_config(
    model_type: str,
    hidden: int,
    intermediate: int,
    layers: int,
    heads: int,
    kv_heads: int,
    vocab: int,
    context: int,
    **extra: Any,
) -> dict[str, Any]:
    """A transformers-style config for a decoder-only model with the usual field names."""
    config: dict[str, Any] = {
        "model_type": model_type,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "vocab_size": vocab,
        "max_position_embeddings": context,
        "tie_word_embeddings": False,
    }
    config.update(extra)
    return config


def tiny_config(model_type: str, **extra: Any) -> dict[str, Any]:
    """A few-layer, small-hidden configuration that builds a random model in milliseconds."""
    config = decoder_config(model_type, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2, vocab=512,
                            context=512, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    config.update(extra)
    return config
