"""GGUF → Hugging Face model directory (safetensors, config, tokenizer, chat template), through transformers.

transformers dequantizes a GGUF when it loads one (``from_pretrained(dir, gguf_file=name)``) but then refuses to
``save_pretrained`` it ("quantized with gguf and is not serializable"). Once the weights are dequantized the model
is an ordinary float model, so dropping the quantization record makes it saveable (see FIELD-NOTES).
"""

from __future__ import annotations

import functools
import struct
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
        check_gguf_file(gguf_path)
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch_dtype(dtype))
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        except (ValueError, KeyError, OSError, RuntimeError, struct.error) as exc:
            # the header is whole (checked above): what transformers refuses is the architecture or tokenizer
            raise DataError(f"{gguf_path}: transformers cannot read this GGUF ({_first_line(exc)})") from None
        _make_serialisable(model)
        model.save_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))


GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)
GGUF_HEADER_BYTES = 24  # magic, version, tensor count, metadata count
AGAIN = "; download or convert it again"


def gguf_problem(path: str | Path) -> str | None:
    """What is structurally wrong with the GGUF file at ``path``, or ``None`` when it reads whole.

    Reads the header, the metadata and the tensor table with the ``gguf`` library (memory-mapped, no tensor data is
    copied) and checks that every tensor's bytes lie inside the file. Used to explain a load that failed.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(GGUF_HEADER_BYTES)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if size == 0:
        return "empty file (0 bytes)"
    if not GGUF_MAGIC.startswith(head[:len(GGUF_MAGIC)]):
        return "not a GGUF file (it does not start with the GGUF magic bytes)"
    if len(head) < GGUF_HEADER_BYTES:
        return f"truncated ({size} bytes, shorter than a GGUF header){AGAIN}"
    (version,) = struct.unpack("<I", head[4:8])
    if version not in GGUF_VERSIONS:
        return f"unsupported GGUF version {version} (known versions: {', '.join(map(str, GGUF_VERSIONS))})"
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception:  # noqa: BLE001 (any failure to parse the header is the answer we are looking for)
        return f"corrupted or truncated ({size} bytes; its metadata or tensor table cannot be read){AGAIN}"
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        return f"truncated ({size} bytes; its tensor table describes {end}){AGAIN}"
    if not reader.tensors:
        return "holds no tensors"
    return None


def check_gguf_file(path: str | Path) -> None:
    """Raise a one-line DataError naming the file when :func:`gguf_problem` finds it corrupted or incomplete."""
    problem = gguf_problem(path)
    if problem:
        raise DataError(f"{path}: {problem}")


def gguf_load_error(path: str | Path, engine: str) -> DataError:
    """The error for a GGUF that ``engine`` refused to load: what is wrong with the file, or that it is whole."""
    problem = gguf_problem(path)
    if problem:
        return DataError(f"{path}: {engine} cannot load it: {problem}")
    return DataError(f"{path}: {engine} cannot load this GGUF although its header reads whole (an architecture "
                     f"or tensor type this {engine} build does not support, or corrupted tensor data)")


def _first_line(error: BaseException) -> str:
    """An exception's message cut to its first non-empty line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):  # "Validation error for field 'x':" then the reason
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else "no details"


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
