"""GGUF → Hugging Face model directory (safetensors, config, tokenizer, chat template), through transformers.

transformers dequantizes a GGUF when it loads one (``from_pretrained(dir, gguf_file=name)``) but then refuses to
``save_pretrained`` it ("quantized with gguf and is not serializable"). Once the weights are dequantized the model
is an ordinary float model, so dropping the quantization record makes it saveable (see FIELD-NOTES).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmctl.errors import DataError


def gguf_to_hf_dir(gguf_path: str | Path, out_dir: str | Path, dtype: str = "float32") -> None:
    """Dequantize ``gguf_path`` and write a safetensors model directory (with its tokenizer) into ``out_dir``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmctl.models.loading import torch_dtype

    gguf_path = Path(gguf_path).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not gguf_path.is_file():
        raise DataError(f"{gguf_path}: no such GGUF file")
    folder, name = str(gguf_path.parent), gguf_path.name
    with _quiet_progress_bars():  # callers show their own spinner; tqdm bars would fight with it
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch_dtype(dtype))
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        except (ValueError, KeyError, OSError, RuntimeError) as exc:
            raise DataError(f"{gguf_path}: transformers cannot read this GGUF ({exc})") from exc
        _make_serialisable(model)
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))


@contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Silence transformers' tqdm bars (its GGUF reader uses a bare ``tqdm`` the logging switch does not reach)."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original
        if were_enabled:
            hf_logging.enable_progress_bar()


def _make_serialisable(model: object) -> None:
    """Forget that the (now dequantized) weights came from a GGUF, so ``save_pretrained`` accepts the model."""
    config = model.config  # type: ignore[attr-defined]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model.hf_quantizer = None  # type: ignore[attr-defined]
