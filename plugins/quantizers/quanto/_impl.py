"""optimum-quanto quantization: ``QuantizedModelForCausalLM`` saves safetensors plus ``quanto_qmap.json``.

Plain ``from_pretrained`` cannot rebuild quanto's tensors, so the quanto quantizer registers a ``load`` that the
transformers engine uses for artefacts it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.quantize.result import QuantizedOutput
from llmctl.quantize.safetensors_output import float_source_dir, quiet_transformers, save_quantized_model
from llmctl.store import Artifact

DTYPE = "bfloat16"


def quantize_quanto(source: Artifact, scheme: str, folder: Path, *, scratch: Path,
                    status: Callable[[str], None] | None = None, **_: Any) -> QuantizedOutput:
    """Quantize the linear layers of ``source`` to quanto ``scheme`` (lm_head kept) and save them."""
    import torch
    from optimum.quanto import QuantizedModelForCausalLM, qint4, qint8
    from transformers import AutoModelForCausalLM

    model_dir = float_source_dir(source, scratch, status)
    quiet_transformers()
    if status is not None:
        status(f"quantizing {source.name} to quanto {scheme}")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16).eval()
    weights = qint8 if scheme == "int8" else qint4
    quantized = QuantizedModelForCausalLM.quantize(model, weights=weights, exclude="lm_head")
    import optimum.quanto

    return save_quantized_model(quantized, model_dir, folder, scheme,
                                {"quanto_version": getattr(optimum.quanto, "__version__", "?"), "compute_dtype": DTYPE,
                                 "loader": "optimum.quanto QuantizedModelForCausalLM"},
                                save=lambda m, where: m.save_pretrained(where))


def load_quanto(artefact: Artifact, dtype: str) -> Any:
    """The transformers model inside a quanto artefact, weights requantized from its safetensors."""
    from optimum.quanto import QuantizedModelForCausalLM

    quiet_transformers()
    wrapped = QuantizedModelForCausalLM.from_pretrained(str(artefact.path))
    model = wrapped._wrapped.eval()
    realign_quantized_weights(model)
    return model


def realign_quantized_weights(model: Any, alignment: int = 64) -> int:
    """Copy the inner tensors of quantized weights that start off an ``alignment``-byte boundary; returns how many.

    Reloaded weights are views into the safetensors file's buffer, at whatever offset the file put them (8 bytes in
    ours). torch's int8 CPU matmul (``torch._weight_int8pack_mm``, which quanto calls for bf16 activations) reads the
    weights with aligned AVX-512 loads and dies with SIGSEGV on such a view; on AVX2 the same call runs. A copy gets a
    fresh allocation, which torch aligns to 64 bytes.
    """
    moved = 0
    for module in model.modules():
        for parameter in module._parameters.values():
            if parameter is None or not hasattr(parameter, "__tensor_flatten__"):
                continue
            inner_names, _ = parameter.__tensor_flatten__()
            for name in inner_names:
                inner = getattr(parameter, name)
                if inner.data_ptr() % alignment:
                    setattr(parameter, name, inner.clone())
                    moved += 1
    return moved
