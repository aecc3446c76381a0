"""Facts about a model before it is quantized: is it already quantized, and how many weights does it have."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmctl.errors import DataError
from llmctl.store import Artifact

FLOAT_GGUF_TYPES = {"F32", "F16", "BF16"}


def gguf_file_type(path: Path) -> str | None:
    """The GGUF's ``general.file_type`` as llama.cpp names it (``MOSTLY_Q4_1``…), read from the header only."""
    import gguf

    from llmctl.models.gguf_import import check_gguf_file

    check_gguf_file(path)  # a corrupted or truncated file: one line naming it, not the reader's exception
    reader = gguf.GGUFReader(str(path))
    field = reader.get_field("general.file_type")
    if field is None:
        return None
    value = int(field.contents())
    try:
        return gguf.LlamaFileType(value).name
    except ValueError:
        return str(value)


def already_quantized(source: Artifact) -> str | None:
    """Why ``source``'s weights are already quantized (a sentence), or None when they are full precision.

    A model converted from a quantized GGUF (the bundled SmolLM2 is Q4_1) carries the rounding of that GGUF in its
    float weights; quantizing again adds a second rounding.
    """
    quantization = source.meta.get("quantization")
    if isinstance(quantization, dict):
        return f"{source.name} is already quantized ({quantization.get('method')})"
    kept = [source.path / str(source.meta["source_gguf"])] if source.meta.get("source_gguf") else []
    for gguf_path in (*kept, source.gguf_path()):  # the shipped original first, then the GGUF beside the model
        if gguf_path is None or not gguf_path.is_file():
            continue
        short = (gguf_file_type(gguf_path) or "").removeprefix("MOSTLY_").removeprefix("ALL_")
        if short and short not in FLOAT_GGUF_TYPES:
            origin = "is" if source.format == "gguf" and gguf_path == source.file() else "comes from"
            return f"{source.name} {origin} a {short} GGUF"
    return None


def count_parameters(model_dir: Path) -> int:
    """Number of weights stored in a safetensors model directory (read from the file headers only)."""
    from math import prod

    from llmctl.convert.safetensors_stream import list_tensors

    return sum(prod(entry.shape) for entry in list_tensors(model_dir))


def weight_bytes(model_dir: Path) -> int:
    """Bytes of the ``*.safetensors`` files of a model directory."""
    return sum(path.stat().st_size for path in Path(model_dir).glob("*.safetensors"))


def gguf_weight_stats(path: Path) -> tuple[int, int]:
    """``(weights, bytes)`` over every tensor of a GGUF file, read from its header (no tensor data is loaded)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    return (sum(int(t.n_elements) for t in reader.tensors), sum(int(t.n_bytes) for t in reader.tensors))


def float_model_dir(source: Artifact, scratch: Path, status: Callable[[str], None] | None = None) -> Path:
    """A safetensors model directory of ``source``: its own, or a dequantized copy (in ``scratch``) of a GGUF."""
    if source.format == "safetensors":
        return source.path
    gguf_path = source.gguf_path()
    if gguf_path is None:
        raise DataError(f"{source.name} is a {source.format} artefact, not a model that can be quantized")
    from llmctl.models.gguf_import import gguf_to_hf_dir

    if status is not None:
        status(f"dequantizing {source.name} to a float copy")
    target = scratch / "float"
    gguf_to_hf_dir(gguf_path, target, dtype="float32")
    return target
