"""Hugging Face model directory → GGUF file that llama.cpp loads, written tensor by tensor.

The header (metadata and every tensor's name, shape and type) is computed from the safetensors headers alone; the
tensor data then follows one tensor at a time, each read, rewritten for llama.cpp, encoded and written before the
next is read. Peak memory is about one tensor plus one open shard, whatever the model's size. Tensors llama.cpp
needs that the checkpoint lacks (``rope_freqs`` for Llama 3.1's rope scaling, a few floats) are computed up front and
written last.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.convert.gguf_encode import FILE_TYPES, encode, encoded_nbytes, header_dtype, quantization_type, tensor_type
from llmctl.convert.rope_scaling import rope_tensors, rope_theta
from llmctl.convert.safetensors_stream import TensorEntry, iter_tensors, list_tensors
from llmctl.convert.tensor_names import PlannedTensor, TensorNamer, find_gguf_mapping, plan_tensors, rewrite_tensor
from llmctl.convert.tokenizer_meta import add_tokenizer_metadata
from llmctl.descriptors import GGUFMapping
from llmctl.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from gguf import GGUFWriter

ProgressCallback = Callable[[int, int, str], None]
# config.json sizes the GGUF header is built from: each a positive integer when present, the first four required
REQUIRED_SIZE_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
SIZE_FIELDS = (*REQUIRED_SIZE_FIELDS, "intermediate_size", "num_key_value_heads", "head_dim",
               "max_position_embeddings")


@dataclass(frozen=True)
class GGUFExport:
    """What an export wrote: architecture, tensor count, dtype, tokenizer kind and the file."""

    path: Path
    architecture: str
    family: str
    dtype: str
    tensors: int
    tokenizer: str
    chat_template: bool


def read_config(model_dir: Path) -> dict[str, Any]:
    """``config.json`` of a model directory (a multimodal config's ``text_config`` is merged in)."""
    from llmctl.models.loading import read_json_file

    path = Path(model_dir) / "config.json"
    config = read_json_file(path, "a model configuration")
    if not isinstance(config, dict):
        raise DataError(f"{path}: expected a JSON object (the model configuration)")
    text = config.get("text_config")
    if isinstance(text, dict):
        config = {**config, **text}
    return config


def check_sizes(config: Mapping[str, Any], model_dir: Path) -> None:
    """The sizes the GGUF header is built from are positive integers (a DataError naming config.json if not)."""
    for key in SIZE_FIELDS:
        value = config.get(key)
        if value is None and key in REQUIRED_SIZE_FIELDS:
            raise DataError(f"{model_dir / 'config.json'}: missing field {key!r}, which the GGUF header needs")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise DataError(f"{model_dir / 'config.json'}: field {key!r} must be a positive whole number, "
                            f"got {value!r}")


def architecture_metadata(config: Mapping[str, Any], mapping: GGUFMapping) -> dict[str, Any]:
    """The ``{arch}.*`` keys llama.cpp reads: sizes, heads, norm epsilon, rotary base, plus the family's own keys."""
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    metadata: dict[str, Any] = {
        "{arch}.context_length": int(config.get("max_position_embeddings") or 2048),
        "{arch}.embedding_length": int(config["hidden_size"]),
        "{arch}.block_count": int(config["num_hidden_layers"]),
        "{arch}.feed_forward_length": int(config["intermediate_size"]),
        "{arch}.attention.head_count": heads,
        "{arch}.attention.head_count_kv": int(config.get("num_key_value_heads") or heads),
        "{arch}.attention.layer_norm_rms_epsilon": float(config.get("rms_norm_eps") or 1e-6),
        "{arch}.attention.key_length": head_dim,
        "{arch}.attention.value_length": head_dim,
        "{arch}.rope.dimension_count": head_dim,
        "{arch}.vocab_size": int(config["vocab_size"]),
    }
    theta = rope_theta(config)
    if theta is not None:
        metadata["{arch}.rope.freq_base"] = theta
    if mapping.metadata is not None:
        metadata.update(mapping.metadata(config))
    return {key.format(arch=mapping.architecture): value for key, value in metadata.items()}


def _add_value(writer: GGUFWriter, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    elif isinstance(value, (list, tuple)):
        writer.add_array(key, list(value))
    else:
        raise DataError(f"GGUF metadata {key!r}: unsupported value {value!r}")


def _planned_tensors(entries: list[TensorEntry], namer: TensorNamer, config: Mapping[str, Any]) -> list[TensorEntry]:
    tied = bool(config.get("tie_word_embeddings", False))
    return [e for e in entries if not namer.skipped(e.name) and not (tied and e.name == "lm_head.weight")]


def _tensor_data(planned: list[PlannedTensor], mapping: GGUFMapping, config: Mapping[str, Any],
                 extra: Mapping[str, np.ndarray]) -> Iterator[np.ndarray]:
    """Each planned tensor's float32 data, rewritten for llama.cpp, read as it is needed; then the computed ones."""
    stream = iter_tensors([part for tensor in planned for part in tensor.parts])
    for tensor in planned:
        yield _assemble(tensor, islice(stream, len(tensor.parts)), mapping, config)
    yield from extra.values()


def _assemble(tensor: PlannedTensor, parts: Iterator[tuple[TensorEntry, torch.Tensor]], mapping: GGUFMapping,
              config: Mapping[str, Any]) -> np.ndarray:
    """One GGUF tensor from its HF parts: the one tensor rewritten (or half of it), or each expert in its slot."""
    import torch

    if len(tensor.parts) == 1:
        ((entry, data),) = parts
        rewritten = rewrite_tensor(entry.name, data, mapping, config)
        if tensor.half is not None:
            rewritten = rewritten.chunk(2, dim=-2)[tensor.half].contiguous()
        return rewritten.numpy()
    stacked = torch.empty(tensor.shape, dtype=torch.float32)
    for index, (entry, data) in enumerate(parts):
        stacked[index] = rewrite_tensor(entry.name, data, mapping, config)
    return stacked.numpy()


def export_gguf(model_dir: Path, out_path: Path, *, dtype: str = "f16", model_name: str | None = None,
                progress: ProgressCallback | None = None) -> GGUFExport:
    """Write the model in ``model_dir`` as a GGUF file at ``out_path`` with weights in ``dtype``."""
    import gguf

    model_dir, out_path = Path(model_dir), Path(out_path)
    quantization_type(dtype)  # reject an unknown dtype before any work
    config = read_config(model_dir)
    family, mapping = find_gguf_mapping(config, model_name)
    check_sizes(config, model_dir)
    namer = TensorNamer(mapping, int(config["num_hidden_layers"]))
    planned = plan_tensors(_planned_tensors(list_tensors(model_dir), namer, config), namer)
    extra = rope_tensors(config, mapping)  # before the file exists: unsupported rope scaling is refused here
    names_shapes = [(t.name, t.shape) for t in planned] + [(name, array.shape) for name, array in extra.items()]

    writer = gguf.GGUFWriter(str(out_path), mapping.architecture)
    try:
        writer.add_name(model_name or config.get("_name_or_path") or model_dir.name)
        writer.add_file_type(int(gguf.LlamaFileType[FILE_TYPES[dtype.lower()]]))
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for key, value in architecture_metadata(config, mapping).items():
            _add_value(writer, key, value)
        tokenizer = add_tokenizer_metadata(writer, model_dir, int(config["vocab_size"]), mapping.pre_tokenizer)

        types = []
        for name, tensor_shape in names_shapes:
            qtype = tensor_type(name, tensor_shape, dtype)
            numpy_dtype, raw = header_dtype(qtype)
            shape = tensor_shape if raw is None else gguf.quant_shape_to_byte_shape(tensor_shape, qtype)
            writer.add_tensor_info(name, shape, numpy_dtype, encoded_nbytes(tensor_shape, qtype), raw_dtype=raw)
            types.append(qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()

        data = _tensor_data(planned, mapping, config, extra)
        for done, ((name, _), array, qtype) in enumerate(zip(names_shapes, data, types, strict=True)):
            writer.write_tensor_data(encode(array, qtype))
            del array
            if progress is not None:
                progress(done + 1, len(names_shapes), name)
        writer.flush()
    finally:
        writer.close()
    template = (model_dir / "chat_template.jinja").is_file() or "chat_template" in _tokenizer_config(model_dir)
    return GGUFExport(out_path, mapping.architecture, family.name, dtype.lower(), len(names_shapes), tokenizer,
                      template)


def _tokenizer_config(model_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((model_dir / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return {}
