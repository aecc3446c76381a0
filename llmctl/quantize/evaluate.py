"""``quantize --eval``: perplexity and bits per byte of the model before and after quantization, on one stack.

A GGUF quantization is compared with the f16 GGUF it started from, both run by llama.cpp; a torch quantization
with the source model in bfloat16, both run by transformers. Each row says which stack measured it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.quality import QualityResult, bundled_text, perplexity_llamacpp, perplexity_transformers
from llmctl.quantize.provenance import count_parameters, gguf_weight_stats
from llmctl.quantize.result import QuantizedOutput
from llmctl.store import Artifact

EVAL_DTYPE = "bfloat16"


@dataclass
class QualityRow:
    """One measured model: what it is, which stack ran it, its weight size and its scores."""

    model: str
    weights: str
    stack: str
    weight_bytes: int
    bits_per_weight: float
    result: QualityResult

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"model": self.model, "weights": self.weights, "stack": self.stack, "weight_bytes": self.weight_bytes,
                "bits_per_weight": round(self.bits_per_weight, 4), "perplexity": self.result.perplexity,
                "bits_per_byte": self.result.bits_per_byte, "scored_tokens": self.result.scored_tokens}


@dataclass
class QualityComparison:
    """Before and after, measured on the same text with the same stack."""

    before: QualityRow
    after: QualityRow

    @property
    def perplexity_change(self) -> float:
        """Relative perplexity change (0.004 = 0.4 % worse)."""
        return self.after.result.perplexity / self.before.result.perplexity - 1

    @property
    def size_ratio(self) -> float:
        """How many times smaller the quantized weights are."""
        return self.before.weight_bytes / self.after.weight_bytes

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record (stored in the artefact's ``llmctl.json``)."""
        return {"before": self.before.as_dict(), "after": self.after.as_dict(),
                "perplexity_change": self.perplexity_change, "text": "llmctl bundled evaluation text"}


def compare_quality(source: Artifact, quantized: Artifact, output: QuantizedOutput,
                    text: str | None = None) -> QualityComparison:
    """Measure ``source`` (or the reference the quantizer kept) and ``quantized`` on ``text`` (default: bundled)."""
    text = text or bundled_text()
    if output.format == "gguf":
        return _compare_gguf(source, quantized, output, text)
    return _compare_torch(source, quantized, output, text)


def _compare_gguf(source: Artifact, quantized: Artifact, output: QuantizedOutput, text: str) -> QualityComparison:
    if output.reference is None:
        raise ValueError("a GGUF quantizer must keep its f16 reference for --eval")
    ref_params, ref_bytes = gguf_weight_stats(output.reference)
    before = QualityRow(source.name, output.reference_label or "f16", "llama.cpp", ref_bytes,
                        8 * ref_bytes / ref_params, perplexity_llamacpp(output.reference, text))
    after = QualityRow(quantized.name, output.dtype, "llama.cpp", output.weight_bytes, output.bits_per_weight,
                       perplexity_llamacpp(quantized.file(), text))
    return QualityComparison(before, after)


def _compare_torch(source: Artifact, quantized: Artifact, output: QuantizedOutput, text: str) -> QualityComparison:
    import gc

    from llmctl.models.loading import load_causal_lm, load_tokenizer
    from llmctl.quantize.loading import load_quantized

    tokenizer = load_tokenizer(source.path)
    model = load_causal_lm(source.path, dtype=EVAL_DTYPE)
    parameters = count_parameters(source.path)
    before = QualityRow(source.name, "bf16", "transformers", parameters * 2, 16.0,
                        perplexity_transformers(model, tokenizer, text))
    del model
    gc.collect()
    model = load_quantized(quantized, EVAL_DTYPE)
    after = QualityRow(quantized.name, output.dtype, "transformers", output.weight_bytes, output.bits_per_weight,
                       perplexity_transformers(model, tokenizer, text))
    return QualityComparison(before, after)
