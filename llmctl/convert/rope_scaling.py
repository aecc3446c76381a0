"""Rotary-embedding scaling in a model's configuration, as llama.cpp takes it.

transformers 5 keeps the rotary settings in ``rope_parameters`` (``rope_type``, ``rope_theta`` and the type's own
keys, or one such dict per layer type); older configs in ``rope_scaling`` (``type`` in the oldest). Llama 3.1 and
3.2's ``llama3`` scaling divides each rotary frequency by a factor that depends on its wavelength: llama.cpp reads
those divisors from a ``rope_freqs`` tensor (F32, one per frequency) that the checkpoint does not hold, so the export
computes it. Any other scaling type is refused: written as plain rope, llama.cpp would rotate differently from
transformers and every logit would be off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmctl.descriptors import GGUFMapping
from llmctl.errors import DataError

if TYPE_CHECKING:
    import numpy as np

ROPE_FREQS = "rope_freqs.weight"


def rope_theta(config: Mapping[str, Any]) -> float | None:
    """The rotary base: in ``rope_parameters`` (transformers 5), else at the top level of the config."""
    rope = config.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope:
        return float(rope["rope_theta"])
    return float(config["rope_theta"]) if config.get("rope_theta") is not None else None


def rope_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each rotary parameter dict of the config, by where it sits (``rope_parameters.full_attention``, …)."""
    for key in ("rope_parameters", "rope_scaling"):
        rope = config.get(key)
        if not isinstance(rope, dict) or not rope:
            continue
        nested = {f"{key}.{name}": value for name, value in rope.items() if isinstance(value, dict)}
        return nested or {key: rope}
    return {}


def rope_type(rope: Mapping[str, Any]) -> str:
    """The scaling type of one rotary parameter dict (``default`` when it scales nothing)."""
    return str(rope.get("rope_type") or rope.get("type") or "default").lower()


def rope_tensors(config: Mapping[str, Any], mapping: GGUFMapping) -> dict[str, np.ndarray]:
    """The tensors llama.cpp needs for the config's rotary scaling (none unscaled); unsupported scaling is refused."""
    tensors = {}
    settings = rope_settings(config)
    for where, rope in settings.items():
        kind = rope_type(rope)
        if kind == "default":
            continue
        if kind == "llama3" and mapping.rope_freqs and len(settings) == 1:
            tensors[ROPE_FREQS] = llama3_rope_freqs(config, rope)
            continue
        raise DataError(f"{where}: rope scaling {kind!r} cannot be written for llama.cpp's "
                        f"{mapping.architecture!r} architecture (the GGUF export writes only llama3 scaling, for "
                        "families whose GGUFMapping sets rope_freqs=True)")
    return tensors


def llama3_rope_freqs(config: Mapping[str, Any], rope: Mapping[str, Any]) -> np.ndarray:
    """llama.cpp's ``rope_freqs`` for ``llama3`` scaling: what each rotary frequency is divided by.

    A frequency whose wavelength fits ``original_max_position_embeddings / high_freq_factor`` times is kept (1); one
    longer than ``original_max_position_embeddings / low_freq_factor`` is divided by ``factor``; in between,
    transformers blends the two frequencies with weight ``s = (context / wavelength - low) / (high - low)`` on the
    unscaled one, i.e. a divisor of ``1 / ((1 - s) / factor + s)``.
    """
    import numpy as np

    heads = int(config["num_attention_heads"])
    dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    theta = rope_theta(config) or 10000.0
    factor = float(rope["factor"])
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    context = float(rope.get("original_max_position_embeddings") or config.get("original_max_position_embeddings")
                    or config["max_position_embeddings"])
    if high <= low:
        raise DataError(f"llama3 rope scaling: high_freq_factor {high} must exceed low_freq_factor {low}")
    frequencies = 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    wavelengths = 2 * math.pi / frequencies
    blend = np.clip((context / wavelengths - low) / (high - low), 0.0, 1.0)  # 1 for short waves, 0 for long ones
    return (1.0 / ((1.0 - blend) / factor + blend)).astype(np.float32)
