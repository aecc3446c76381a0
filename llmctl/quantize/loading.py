"""Loading a torch-quantized artefact (torchao, quanto, bitsandbytes) as a transformers model.

Artefacts whose ``config.json`` carries a ``quantization_config`` transformers understands (torchao, bitsandbytes)
load with plain ``from_pretrained``; a quantizer that needs its own loader (quanto) provides ``Quantizer.load``.
Engines call :func:`load_quantized_model` first and fall back to their usual loading when it returns None.
"""

from __future__ import annotations

from typing import Any

from llmctl.descriptors import Quantizer
from llmctl.store import Artifact


def quantizer_of(artefact: Artifact) -> Quantizer | None:
    """The quantizer that wrote ``artefact`` (from its ``llmctl.json``), or None for an unquantized one."""
    from llmctl.plugins import get_registry

    record = artefact.meta.get("quantization")
    if not isinstance(record, dict) or not record.get("quantizer"):
        return None
    return get_registry().get("quantizer", str(record["quantizer"]))


def load_quantized_model(artefact: Artifact, dtype: str) -> Any | None:
    """The model of a torch-quantized artefact that needs its quantizer's own loader, else None."""
    if artefact.format != "safetensors":
        return None
    quantizer = quantizer_of(artefact)
    if quantizer is None or quantizer.load is None:
        return None
    return quantizer.load(artefact, dtype)


def load_quantized(artefact: Artifact, dtype: str) -> Any:
    """The model of any safetensors artefact, quantized or not, in eval mode on the CPU."""
    from llmctl.models.loading import load_causal_lm

    model = load_quantized_model(artefact, dtype)
    return model if model is not None else load_causal_lm(artefact.path, dtype=dtype)
