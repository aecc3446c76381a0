"""GGUF quantization quality: llmctl's writer against llama.cpp's own quantizer, same model, same f16 start.

Both quantize one f16 GGUF of the bundled SmolLM2-135M (written by llmctl's exporter) to the same type; llama.cpp
then scores the bundled text with each file. A ratio of 1.0 means our file is exactly as good as llama.cpp's.
"""

from __future__ import annotations

import ctypes
import tempfile
from pathlib import Path

from benchmarks.report import Row, Section

MODEL = "smollm2-135m"
SCHEMES = ("q8_0", "q4_0")


_SILENT_LOG = None


def _silence_llamacpp(llama_cpp) -> None:
    """llama.cpp's quantizer logs every tensor; keep that off the bench's output."""
    global _SILENT_LOG
    if _SILENT_LOG is None:
        _SILENT_LOG = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
    llama_cpp.llama_log_set(_SILENT_LOG, ctypes.c_void_p(0))


def llamacpp_reference_quantize(src: Path, dst: Path, scheme: str) -> None:
    """The baseline: llama.cpp's quantizer (``llama_model_quantize``) writes ``scheme`` from the f16 ``src``."""
    import llama_cpp

    _silence_llamacpp(llama_cpp)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{scheme.upper()}")
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) != 0:
        raise RuntimeError(f"llama.cpp could not quantize {src} to {scheme}")


def run(schemes: tuple[str, ...] = SCHEMES) -> Section:
    """Perplexity and bits per byte of our q8_0/q4_0 GGUFs next to llama.cpp's, as ratios (> 1: ours is better)."""
    from llmctl.convert.gguf_export import export_gguf
    from llmctl.models.resolve import resolve_model
    from llmctl.quality import bundled_text, perplexity_llamacpp

    source = resolve_model(MODEL)
    text = bundled_text()
    section = Section("GGUF quantization quality: llmctl vs llama.cpp's quantizer",
                      f"{MODEL} (converted from its bundled Q4_1 GGUF) exported once as f16 by llmctl; each type "
                      "written by llmctl's GGUF writer (gguf library) and by `llama_model_quantize` from that f16 "
                      "file; perplexity on llmctl's bundled text (window 1024, stride 512) run by llama.cpp. Lower "
                      "is better; ratio = llama.cpp's ÷ ours.")
    with tempfile.TemporaryDirectory(prefix="llmctl-bench-quant-") as scratch:
        folder = Path(scratch)
        f16 = export_gguf(source.path, folder / "f16.gguf", dtype="f16", model_name=source.name).path
        reference = perplexity_llamacpp(f16, text)
        for scheme in schemes:
            ours_path = export_gguf(source.path, folder / f"ours-{scheme}.gguf", dtype=scheme,
                                    model_name=source.name).path
            theirs_path = folder / f"llamacpp-{scheme}.gguf"
            llamacpp_reference_quantize(f16, theirs_path, scheme)
            ours, theirs = perplexity_llamacpp(ours_path, text), perplexity_llamacpp(theirs_path, text)
            note = (f"f16: {reference.perplexity:.3f}; files {ours_path.stat().st_size / 2**20:.1f} MiB (ours) vs "
                    f"{theirs_path.stat().st_size / 2**20:.1f} MiB (llama.cpp keeps the output/tied embedding "
                    "at higher precision below 8 bits)")
            section.rows.append(Row(f"llmctl {scheme} perplexity", ours.perplexity, "",
                                    f"llama.cpp {scheme}", theirs.perplexity, higher_is_better=False, note=note))
            section.rows.append(Row(f"llmctl {scheme} bits/byte", ours.bits_per_byte, "bits/B",
                                    f"llama.cpp {scheme}", theirs.bits_per_byte, higher_is_better=False,
                                    note=f"f16: {reference.bits_per_byte:.4f} bits/B"))
    return section
