"""bitsandbytes quantization through transformers' ``BitsAndBytesConfig`` (CUDA only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.quantize.result import QuantizedOutput
from llmctl.quantize.safetensors_output import float_source_dir, quiet_transformers, save_quantized_model
from llmctl.store import Artifact


def quantize_bnb(source: Artifact, scheme: str, folder: Path, *, scratch: Path,
                 status: Callable[[str], None] | None = None, **_: Any) -> QuantizedOutput:
    """Load ``source`` on the GPU quantized to ``scheme`` (nf4 or int8) and save it with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    model_dir = float_source_dir(source, scratch, status)
    quiet_transformers()
    if scheme == "nf4":
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=torch.bfloat16)
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    if status is not None:
        status(f"loading {source.name} on the GPU as bitsandbytes {scheme}")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16, quantization_config=config,
                                                 device_map="cuda")
    import bitsandbytes

    return save_quantized_model(model.eval(), model_dir, folder, scheme,
                                {"bitsandbytes_version": bitsandbytes.__version__, "device": "cuda"})
