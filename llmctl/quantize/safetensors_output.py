"""What a quantizer that writes a transformers model (safetensors) needs around its own quantization step.

A torch quantizer plugin (torchao, quanto, bitsandbytes, or a third party's) does three things the same way:

1. :func:`float_source_dir` — get a float safetensors folder of the source artefact to load (a GGUF-only artefact
   is dequantized into the run's ``scratch`` folder first);
2. its own step: load that folder quantized, or quantize the loaded model;
3. :func:`save_quantized_model` — save the quantized model and the source's tokenizer into the artefact folder and
   describe the result as a :class:`~llmctl.quantize.result.QuantizedOutput`.

:func:`quiet_transformers` hides transformers' own progress bars while it loads (llmctl shows a spinner). Only
transformers and torch are imported, and only when a function is called.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.quantize.provenance import count_parameters, float_model_dir, weight_bytes
from llmctl.quantize.result import QuantizedOutput
from llmctl.store import Artifact


def float_source_dir(source: Artifact, scratch: Path, status: Callable[[str], None] | None = None) -> Path:
    """The float safetensors folder to quantize: ``source``'s own, or a dequantized copy of its GGUF in ``scratch``."""
    return float_model_dir(source, scratch, status)


def save_quantized_model(model: Any, model_dir: Path, folder: Path, scheme: str, details: dict[str, Any],
                         save: Callable[[Any, Path], None] | None = None) -> QuantizedOutput:
    """Save ``model`` and ``model_dir``'s tokenizer into ``folder``; describe the result for ``llmctl.json``.

    ``save(model, folder)`` writes the weights when the model's own ``save_pretrained(folder,
    safe_serialization=True)`` is not the way (a wrapper class with its own format). ``details`` become extra entries
    of the artefact's ``quantization`` record; whether a chat template was saved is added to them.
    """
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
