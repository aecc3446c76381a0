"""GGUF quantization: export the float model with llmctl's GGUF writer, or hand an f16 GGUF to llama.cpp."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.errors import DataError, MissingExtraError
from llmctl.quantize.provenance import float_model_dir, gguf_weight_stats
from llmctl.quantize.result import QuantizedOutput
from llmctl.store import Artifact, safe_name

_LOG: list[str] = []
_CALLBACK: Any = None  # kept alive for as long as llama.cpp may call it


def _collect_llamacpp_log(llama_cpp: Any) -> None:
    """Send llama.cpp's log lines (one per tensor while quantizing) to a list instead of the terminal."""
    import ctypes

    global _CALLBACK
    if _CALLBACK is None:
        def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            _LOG.append(text.decode("utf-8", "replace"))
            del _LOG[:-50]

        _CALLBACK = llama_cpp.llama_log_callback(collect)
    _LOG.clear()
    llama_cpp.llama_log_set(_CALLBACK, ctypes.c_void_p(0))


def _restore_llamacpp_log(llama_cpp: Any) -> None:
    """Give llama.cpp back the log callback llama-cpp-python installed (it honours ``verbose``)."""
    import ctypes

    try:
        from llama_cpp import _logger
    except ImportError:  # keep ours: it is alive for the whole process
        return
    llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def llamacpp_quantize(src: Path, dst: Path, scheme: str) -> None:
    """Quantize the GGUF ``src`` to ``scheme`` with llama.cpp's own quantizer (in-process, logs kept quiet)."""
    try:
        import llama_cpp
    except ImportError as error:
        raise MissingExtraError("llama-cpp-python", "llamacpp", f"GGUF {scheme}") from error
    import ctypes

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{scheme.upper()}", None)
    if ftype is None:
        raise DataError(f"this llama.cpp build has no {scheme} quantization type")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    _collect_llamacpp_log(llama_cpp)
    try:
        status = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    finally:
        _restore_llamacpp_log(llama_cpp)
    if status != 0:
        tail = "".join(_LOG).strip().splitlines()[-1:] or ["no message"]
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
