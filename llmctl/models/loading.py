"""Loading Hugging Face models and tokenizers from a local directory (heavy imports inside the functions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def torch_dtype(name: str) -> Any:
    """The ``torch.dtype`` for a name such as ``bf16`` or ``float32``."""
    import torch

    return getattr(torch, DTYPES.get(name, name))


def load_tokenizer(path: str | Path, trust_remote_code: bool = False) -> Any:
    """The tokenizer stored in a model directory."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)


def load_causal_lm(path: str | Path, dtype: str = "float32", device: str = "cpu",
                   trust_remote_code: bool = False) -> Any:
    """A causal language model from a safetensors model directory, in eval mode on ``device``."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype(dtype),
                                                 trust_remote_code=trust_remote_code, use_safetensors=True)
    return model.to(device).eval()
