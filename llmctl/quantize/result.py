"""What a quantizer plugin hands back after writing its output."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class QuantizedOutput:
    """A quantizer's output inside the artefact folder.

    ``file`` names the main file for a single-file format (the ``.gguf``), None for a model directory. ``parameters``
    is the number of weights of the model that was quantized and ``weight_bytes`` the bytes its quantized weights
    take, so bits per weight = 8 × weight_bytes / parameters. ``reference`` is an unquantized copy on the same stack
    (the f16 GGUF a GGUF quantization started from) kept for ``--eval`` inside the folder's scratch space; the run
    deletes it before the artefact is published. ``details`` are extra ``llmctl.json`` entries.
    """

    format: str
    dtype: str
    parameters: int
    weight_bytes: int
    file: str | None = None
    reference: Path | None = None
    reference_label: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def bits_per_weight(self) -> float:
        """Average bits each weight takes on disk (scales and block metadata included)."""
        return 8 * self.weight_bytes / self.parameters if self.parameters else float("nan")
