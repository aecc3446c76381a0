"""Read a Hugging Face model directory's safetensors weights one tensor (or one shard) at a time.

Only one shard file is open at any moment, and it is closed before the next one opens, so the pages of a shard that
the memory map pulled in are released: reading a whole model costs about one shard of memory, never the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmctl.errors import DataError

if TYPE_CHECKING:
    import torch

INDEX_FILE = "model.safetensors.index.json"


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a model directory: its shard file, name, shape and safetensors dtype (no data)."""

    file: Path
    name: str
    shape: tuple[int, ...]
    dtype: str


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors shards of ``model_dir`` in index order (a single ``model.safetensors`` when not sharded).

    Each shard's header is checked first, so a corrupted or truncated file fails with one line naming it.
    """
    from llmctl.models.loading import check_safetensors_file, safetensors_files

    model_dir = Path(model_dir)
    found = safetensors_files(model_dir)
    if not found:
        raise DataError(f"{model_dir}: no safetensors weights (model.safetensors or {INDEX_FILE})")
    for path in found:
        check_safetensors_file(path)
    return found


def list_tensors(model_dir: Path) -> list[TensorEntry]:
    """Every tensor of the model with its shape and dtype, read from the shard headers only."""
    from safetensors import safe_open

    entries = []
    for path in weight_files(model_dir):
        with safe_open(str(path), framework="pt") as shard:
            for name in shard.keys():  # noqa: SIM118 (safe_open is not a mapping)
                piece = shard.get_slice(name)
                entries.append(TensorEntry(path, name, tuple(piece.get_shape()), piece.get_dtype()))
    return entries


def iter_tensors(entries: list[TensorEntry]) -> Iterator[tuple[TensorEntry, torch.Tensor]]:
    """Load the tensors of ``entries`` in order, one at a time, keeping at most one shard open."""
    from safetensors import safe_open

    position = 0
    while position < len(entries):
        path = entries[position].file
        with safe_open(str(path), framework="pt") as shard:
            while position < len(entries) and entries[position].file == path:
                entry = entries[position]
                yield entry, shard.get_tensor(entry.name)
                position += 1


def iter_shards(model_dir: Path) -> Iterator[tuple[Path, dict[str, torch.Tensor]]]:
    """Each shard of the model as a whole ``{name: tensor}`` dict, one shard in memory at a time."""
    from safetensors.torch import load_file

    for path in weight_files(model_dir):
        yield path, load_file(str(path))
