"""Loading Hugging Face models and tokenizers from a local directory (heavy imports inside the functions).

Before transformers sees a model folder, :func:`check_model_dir` reads its ``config.json`` and the headers of its
safetensors shards (a few kilobytes, never the weights), so a corrupted or unusable folder fails with one line that
names the file and what is wrong, instead of a library's exception.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from llmctl.errors import DataError

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}
# a safetensors header is a JSON object; anything this large is a corrupted length field (safetensors' own limit)
MAX_HEADER_BYTES = 100 * 1024 * 1024
SAFETENSORS_INDEX = "model.safetensors.index.json"


def torch_dtype(name: str) -> Any:
    """The ``torch.dtype`` for a name such as ``bf16`` or ``float32``."""
    import torch

    return getattr(torch, DTYPES.get(name, name))


def read_json_file(path: Path, what: str) -> Any:
    """The JSON value of ``path``; an unreadable, empty, non-UTF-8 or malformed file raises a one-line DataError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not {what}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read {what} ({error.strerror or error})") from None
    if not raw.strip():
        raise DataError(f"{path}: empty file, not {what}")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise DataError(f"{path}: starts with a UTF-8 byte-order mark, which transformers cannot read; "
                        "save the file without it")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: invalid JSON in {what} ({error.msg} at column {error.colno})") \
            from None
    except RecursionError:
        raise DataError(f"{path}: {what} is nested too deeply to be real JSON data") from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise DataError(f"{path}: invalid JSON in {what} ({error})") from None


def read_model_config(model_dir: str | Path, trust_remote_code: bool = False) -> dict[str, Any]:
    """``config.json`` of a model folder, checked: a JSON object naming a ``model_type`` this transformers knows.

    A config whose ``auto_map`` points at the model's own Python code needs ``--trust-remote-code``; without it
    the error says so rather than "unrecognized model".
    """
    path = Path(model_dir) / "config.json"
    config = read_json_file(path, "a model configuration")
    if not isinstance(config, dict):
        raise DataError(f"{path}: expected a JSON object (the model configuration), got {_json_type(config)}")
    auto_map = config.get("auto_map")
    model_type = config.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise DataError(f"{path}: field 'model_type' must be a string, got {_json_type(model_type)}")
    if model_type is not None and _known_model_type(model_type):
        return config  # transformers' own code runs it (an auto_map beside a known type is not needed)
    if auto_map:
        if trust_remote_code:
            return config
        raise DataError(f"{path}: this model needs its own Python code (auto_map in config.json"
                        f"{f', model_type {model_type!r}' if model_type else ''}); run again with "
                        "--trust-remote-code if you trust its source")
    if model_type is None:
        raise DataError(f"{path}: no 'model_type' field, so transformers cannot tell which model this is")
    raise DataError(f"{path}: model_type {model_type!r} is not known to the installed transformers (a newer "
                    "model? upgrade transformers)")


def _known_model_type(model_type: str) -> bool:
    from transformers import CONFIG_MAPPING

    return model_type in CONFIG_MAPPING  # transformers' own types and any a plugin registered


def _json_type(value: Any) -> str:
    """The JSON name of a value's type (object, array, string, number, boolean, null)."""
    for kind, name in ((dict, "an object"), (list, "an array"), (str, "a string"), (bool, "a boolean"),
                       (int, "a number"), (float, "a number")):
        if isinstance(value, kind):
            return name
    return "null"


def safetensors_files(model_dir: str | Path) -> list[Path]:
    """The safetensors shards of a model folder: those its index names, else ``*.safetensors`` (may be empty)."""
    model_dir = Path(model_dir)
    index = model_dir / SAFETENSORS_INDEX
    if index.is_file():
        data = read_json_file(index, "a safetensors index")
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise DataError(f"{index}: expected an object with a 'weight_map' of tensor names to shard files")
        return [model_dir / name for name in dict.fromkeys(weight_map.values())]
    single = model_dir / "model.safetensors"
    return [single] if single.is_file() else sorted(model_dir.glob("*.safetensors"))


def check_safetensors_file(path: str | Path) -> None:
    """Read a safetensors file's header (not its data) and raise a one-line DataError if it is not whole.

    Checks what the format guarantees: an 8-byte header length, a JSON object of tensors within the file, each
    tensor's byte range inside the data that follows, and the file no shorter than the last tensor's end.
    """
    path = Path(path)
    problem = safetensors_problem(path)
    if problem:
        raise DataError(f"{path}: {problem}; the weights file is corrupted or incomplete (download or convert it "
                        "again)")


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with the safetensors file at ``path`` (``None`` when its header is whole and consistent)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            start = handle.read(8)
            if size == 0:
                return "empty file (0 bytes)"
            if len(start) < 8:
                return f"truncated ({size} bytes, shorter than a safetensors header)"
            (length,) = struct.unpack("<Q", start)
            if length > min(MAX_HEADER_BYTES, size - 8):
                return f"invalid header length ({length} bytes in a file of {size} bytes)"
            header_bytes = handle.read(length)
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (ValueError, RecursionError):
        return "the header is not valid JSON"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    data_size = size - 8 - length
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            return f"tensor {name!r} has no valid data_offsets in the header"
        end = max(end, offsets[1])
    if end > data_size:
        return f"truncated ({size} bytes; the header describes {8 + length + end})"
    return None


def check_model_dir(model_dir: str | Path, trust_remote_code: bool = False) -> dict[str, Any]:
    """Check a model folder before transformers loads it: its config, and every safetensors shard's header."""
    config = read_model_config(model_dir, trust_remote_code)
    for shard in safetensors_files(model_dir):
        check_safetensors_file(shard)
    return config


def load_tokenizer(path: str | Path, trust_remote_code: bool = False) -> Any:
    """The tokenizer stored in a model directory."""
    from transformers import AutoTokenizer

    if (Path(path) / "config.json").is_file():  # a model folder (a run's adapter folder has only a tokenizer)
        read_model_config(path, trust_remote_code)
    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{path}: transformers cannot load the tokenizer ({_first_line(error)})") from None


def load_causal_lm(path: str | Path, dtype: str = "float32", device: str = "cpu",
                   trust_remote_code: bool = False) -> Any:
    """A causal language model from a safetensors model directory, in eval mode on ``device``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    check_model_dir(path, trust_remote_code)
    try:  # transformers checks each field's type and value here
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (TypeError, ValueError, KeyError, OSError) as error:
        raise DataError(f"{Path(path) / 'config.json'}: transformers refuses this model configuration "
                        f"({_first_line(error)})") from None
    model = AutoModelForCausalLM.from_pretrained(str(path), config=config, dtype=torch_dtype(dtype),
                                                 trust_remote_code=trust_remote_code, use_safetensors=True)
    return model.to(device).eval()


def _first_line(error: BaseException) -> str:
    """An exception's message cut to its first non-empty line (library messages often run to many lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):  # "Validation error for field 'x':" then the reason
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else "no details"
