"""Shared steps of the torch quantizers: load the float model, save the quantized one with its tokenizer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.quantize.provenance import count_parameters, float_model_dir, weight_bytes
from llmctl.quantize.result import QuantizedOutput
from llmctl.store import Artifact


def prepare_source(source: Artifact, scratch: Path, status: Callable[[str], None] | None) -> Path:
    """The float safetensors directory to quantize (dequantizing a GGUF-only artefact first)."""
    return float_model_dir(source, scratch, status)


def save_model(model: Any, model_dir: Path, folder: Path, scheme: str, details: dict[str, Any],
               save: Callable[[Any, Path], None] | None = None) -> QuantizedOutput:
    """Save ``model`` (with ``save`` or ``save_pretrained`` as safetensors) and the tokenizer into ``folder``."""
    from transformers import AutoTokenizer

    if save is None:
        model.save_pretrained(folder, safe_serialization=True)
    else:
        save(model, folder)
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(folder)
    chat_template = (folder / "chat_template.jinja").is_file() or "chat_template" in (
        (folder / "tokenizer_config.json").read_text() if (folder / "tokenizer_config.json").is_file() else "")
    return QuantizedOutput("safetensors", scheme, count_parameters(model_dir), weight_bytes(folder),
                           details={**details, "chat_template": chat_template})


def quiet_transformers() -> None:
    """Hide transformers' own progress bars (llmctl shows a spinner)."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def quiet_torchao() -> None:
    """Silence torchao's import-time notes about CUDA-only kernels it cannot load on a CPU machine."""
    import logging

    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
