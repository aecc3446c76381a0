"""GGUF quantization: export the float model with llmctl's GGUF writer, or hand an f16 GGUF to llama.cpp."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.errors import DataError, MissingExtraError
from llmctl.quantize.provenance import float_model_dir, gguf_weight_stats
from llmctl.quantize.result import QuantizedOutput
from llmctl.store import Artifact, safe_name


def llamacpp_quantize(src: Path, dst: Path, scheme: str) -> None:
    """Quantize the GGUF ``src`` to ``scheme`` with llama.cpp's own quantizer (in-process, logs silenced)."""
    try:
        import llama_cpp
    except ImportError as error:
        raise MissingExtraError("llama-cpp-python", "llamacpp", f"GGUF {scheme}") from error
    import ctypes

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{scheme.upper()}", None)
    if ftype is None:
        raise DataError(f"this llama.cpp build has no {scheme} quantization type")
    messages: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        messages.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    status = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if status != 0:
        tail = "".join(messages).strip().splitlines()[-1:] or ["no message"]
        raise DataError(f"llama.cpp could not quantize {src.name} to {scheme}: {tail[0]}")


def quantize_gguf(source: Artifact, scheme: str, folder: Path, *, llamacpp: bool, scratch: Path, name: str,
                  progress: Callable[[int, int, str], None] | None = None,
                  status: Callable[[str], None] | None = None, keep_reference: bool = False,
                  **_: Any) -> QuantizedOutput:
    """Write ``source`` as a ``scheme`` GGUF into ``folder``; keep an f16 reference in ``scratch`` when asked."""
    from llmctl.convert.gguf_export import export_gguf

    say = status or (lambda text: None)
    model_dir = float_model_dir(source, scratch, say)
    file_name = f"{safe_name(name)}.gguf"
    out_path = folder / file_name
    reference = None
    if llamacpp or (keep_reference and scheme != "f16"):
        reference = scratch / "reference-f16.gguf"
        say(f"writing an f16 GGUF of {source.name}")
        result = export_gguf(model_dir, reference, dtype="f16", model_name=source.name, progress=progress)
    if llamacpp:
        say(f"llama.cpp quantizing to {scheme.upper()}")
        llamacpp_quantize(reference, out_path, scheme)
    else:
        say(f"writing GGUF {scheme}")
        result = export_gguf(model_dir, out_path, dtype=scheme, model_name=source.name, progress=progress)
        if scheme == "f16":
            reference = out_path
    parameters, weight_bytes = gguf_weight_stats(out_path)
    details = {"writer": "llama.cpp llama_model_quantize" if llamacpp else "gguf library (llmctl export)",
               "architecture": result.architecture, "chat_template": result.chat_template}
    return QuantizedOutput("gguf", scheme, parameters, weight_bytes, file=file_name,
                           reference=reference if keep_reference else None, reference_label="f16", details=details)
