"""One quantization: check the method can run, write the quantized artefact atomically, optionally measure it.

Everything happens inside :func:`llmctl.store.create_artifact`'s temporary directory, the ``--eval`` measurement
included, so an interrupted quantization (Ctrl-C, SIGKILL) never leaves an artefact listed as complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.quantize.methods import MethodChoice, require_usable
from llmctl.quantize.provenance import already_quantized
from llmctl.store import Artifact, create_artifact, find_artifact, safe_name

ProgressCallback = Callable[[int, int, str], None]
StatusCallback = Callable[[str], None]
SCRATCH = ".scratch"


@dataclass
class QuantizeRun:
    """What ``llmctl quantize`` reports: the new artefact, its quality comparison (``--eval``) and any warning."""

    artifact: Artifact
    choice: MethodChoice
    comparison: Any = None
    requantized: str | None = None

    @property
    def quantization(self) -> dict[str, Any]:
        """The ``quantization`` record of the artefact's ``llmctl.json``."""
        return dict(self.artifact.meta.get("quantization", {}))


def default_name(source: Artifact, choice: MethodChoice) -> str:
    """The quantizer's ``artifact_name`` filled in: ``smollm2-135m-q8_0`` (GGUF), ``smollm2-135m-torchao-int8``."""
    return choice.quantizer.artifact_name.format(source=source.name, quantizer=choice.quantizer.name,
                                                 scheme=choice.scheme)


def quantize_model(source: Artifact, choice: MethodChoice, *, name: str | None = None, evaluate: bool = False,
                   text: str | None = None, overwrite: bool = False, root: Path | None = None,
                   progress: ProgressCallback | None = None, status: StatusCallback | None = None,
                   warn: StatusCallback | None = None) -> QuantizeRun:
    """Quantize ``source`` with ``choice`` into a new store artefact; ``evaluate`` adds a before/after table.

    ``warn(line)`` is told, before any work, when ``source`` already went through a quantization (the result
    carries both roundings).
    """
    require_usable(choice)
    quantizer = choice.quantizer
    assert quantizer.quantize is not None, f"quantizer {quantizer.name} has no quantize function"
    name = name or default_name(source, choice)
    requantized = already_quantized(source)
    if requantized and warn is not None:
        warn(f"{requantized}: quantizing already-quantized weights adds a second rounding error "
             "(start from a full-precision model when you can)")
    say = status or (lambda text: None)
    record: dict[str, Any] = {}
    comparison = None
    with create_artifact(name, kind="model", format=quantizer.output_format, origin=f"quantize:{source.name}",
                         parents=[source.name], dtype=choice.scheme, extra=record, root=root,
                         overwrite=overwrite) as folder:
        scratch = folder / SCRATCH
        scratch.mkdir()
        output = quantizer.quantize(source, choice.scheme, folder, name=name, scratch=scratch, progress=progress,
                                    status=say, keep_reference=evaluate)
        if output.file:
            record["file"] = output.file
        record["quantization"] = {
            "method": choice.name,
            "quantizer": quantizer.name,
            "scheme": choice.scheme,
            "bits_per_weight": round(output.bits_per_weight, 4),
            "nominal_bits_per_weight": quantizer.bits.get(choice.scheme),
            "parameters": output.parameters,
            "weight_bytes": output.weight_bytes,
            "from_quantized_weights": requantized,
            **output.details,
        }
        for key in ("chat_template", "architecture"):
            if key in source.meta or key in output.details:
                record[key] = output.details.get(key, source.meta.get(key))
        if evaluate:
            from llmctl.quantize.evaluate import compare_quality

            say("measuring perplexity before and after")
            draft = Artifact(name, folder, {"format": quantizer.output_format, "file": output.file, **record})
            comparison = compare_quality(source, draft, output, text=text)
            record["quality"] = comparison.as_dict()
        shutil.rmtree(scratch, ignore_errors=True)
    artifact = find_artifact(name, root) or find_artifact(safe_name(name), root)
    assert artifact is not None
    return QuantizeRun(artifact, choice, comparison, requantized)
