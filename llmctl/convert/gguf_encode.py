"""Encode float tensors as GGUF tensor types (F32, F16, BF16 and the block quantizations the gguf library writes).

Shared by ``convert --to gguf`` and the GGUF quantizer: one function decides each tensor's type, one says how many
bytes it will take (for the header, before any data is read), one produces the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmctl.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    from gguf import GGMLQuantizationType

# User-facing dtype names → gguf's GGMLQuantizationType member names (types gguf.quants can write itself).
GGUF_DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q5_0": "Q5_0", "q5_1": "Q5_1",
               "q4_0": "Q4_0", "q4_1": "Q4_1"}

# general.file_type (gguf.LlamaFileType member names) recorded for each dtype.
FILE_TYPES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0",
              "q5_0": "MOSTLY_Q5_0", "q5_1": "MOSTLY_Q5_1", "q4_0": "MOSTLY_Q4_0", "q4_1": "MOSTLY_Q4_1"}


LOW_BIT = ("q4_0", "q4_1", "q5_0", "q5_1")


def quantization_type(dtype: str) -> GGMLQuantizationType:
    """The gguf tensor type for a dtype name such as ``f16`` or ``q8_0``."""
    from gguf import GGMLQuantizationType

    if dtype.lower() not in GGUF_DTYPES:
        raise DataError(f"unsupported GGUF dtype {dtype!r}; choose one of {', '.join(GGUF_DTYPES)}")
    return GGMLQuantizationType[GGUF_DTYPES[dtype.lower()]]


def tensor_type(gguf_name: str, shape: Sequence[int], dtype: str) -> GGMLQuantizationType:
    """The type a tensor is stored as: vectors (norms, biases) and mixture-of-experts routers (``ffn_gate_inp``, which
    pick the experts) stay F32, as in llama.cpp's own converter; rows no block divides fall back to F16.

    With 4- and 5-bit types the embedding and output matrices are kept at Q8_0, as llama.cpp's own quantizer keeps
    its output layer at higher precision: they are small next to the blocks and the logits are sensitive to them
    (SmolLM2-135M q4_0 perplexity: 36.8 with them at 4 bits, vs 34.2 for llama.cpp's file).
    """
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    wanted = quantization_type(dtype)
    if len(shape) < 2 or gguf_name.endswith(("_norm.weight", "ffn_gate_inp.weight")):
        return GGMLQuantizationType.F32
    if dtype.lower() in LOW_BIT and gguf_name in ("token_embd.weight", "output.weight"):
        wanted = GGMLQuantizationType.Q8_0
    block_size, _ = GGML_QUANT_SIZES[wanted]
    if shape[-1] % block_size != 0:
        return GGMLQuantizationType.F16
    return wanted


def encoded_nbytes(shape: Sequence[int], qtype: GGMLQuantizationType) -> int:
    """Bytes a tensor of ``shape`` takes once encoded as ``qtype``."""
    from math import prod

    from gguf import GGML_QUANT_SIZES

    block_size, type_size = GGML_QUANT_SIZES[qtype]
    return prod(shape) // block_size * type_size


def encode(array: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    """``array`` (float32) encoded as ``qtype``: float16/float32 values, or the raw bytes of a block type."""
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    if qtype == GGMLQuantizationType.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if qtype == GGMLQuantizationType.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)


def header_dtype(qtype: GGMLQuantizationType) -> tuple[np.dtype, GGMLQuantizationType | None]:
    """What ``GGUFWriter.add_tensor_info`` wants for ``qtype``: a numpy dtype and, for block types, the raw type."""
    import numpy as np
    from gguf import GGMLQuantizationType

    if qtype == GGMLQuantizationType.F32:
        return np.dtype(np.float32), None
    if qtype == GGMLQuantizationType.F16:
        return np.dtype(np.float16), None
    return np.dtype(np.uint8), qtype
