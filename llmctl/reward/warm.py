"""WARM: weight-averaged reward (or any) models fine-tuned from one base, streamed one tensor at a time.

Only one output shard plus one tensor per input is in memory at a time, so averaging models larger than RAM works.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import DataError

WEIGHTS_INDEX = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
# config keys that may differ between runs of one architecture without changing the weights' meaning
VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "use_cache"}


@dataclass(frozen=True)
class WeightFiles:
    """Where each tensor of a safetensors model directory lives."""

    directory: Path
    tensor_file: dict[str, str]

    def shards(self) -> list[str]:
        """Shard file names in order of first appearance."""
        return list(dict.fromkeys(self.tensor_file.values()))


def weight_files(directory: Path) -> WeightFiles:
    """The tensor → file map of a model directory (single ``model.safetensors`` or a sharded index)."""
    from safetensors import safe_open

    index = directory / WEIGHTS_INDEX
    if index.is_file():
        return WeightFiles(directory, dict(json.loads(index.read_text())["weight_map"]))
    single = directory / SINGLE_FILE
    if not single.is_file():
        raise DataError(f"{directory}: no {SINGLE_FILE} or {WEIGHTS_INDEX} (averaging needs safetensors weights; "
                        "merge adapters into their base first)")
    with safe_open(str(single), framework="pt") as handle:
        names = list(handle.keys())
    return WeightFiles(directory, dict.fromkeys(names, SINGLE_FILE))


def _config(directory: Path) -> dict[str, Any]:
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        raise DataError(f"{directory}: no readable config.json") from None
    return {k: v for k, v in config.items() if k not in VOLATILE_CONFIG_KEYS}


def base_of(directory: Path) -> str | None:
    """The base model an artefact was fine-tuned from, as its ``llmctl.json`` records it (``base`` field)."""
    from llmctl.store import read_meta

    meta = read_meta(directory) or {}
    return meta.get("base") or meta.get("base_model")


def check_compatible(directories: Sequence[Path]) -> list[WeightFiles]:
    """Raise a DataError unless all models share architecture, config, tensor names/shapes and base."""
    from safetensors import safe_open

    if len(directories) < 2:
        raise DataError("averaging needs at least two models")
    first_config = _config(directories[0])
    files = [weight_files(d) for d in directories]
    bases = {d: base_of(d) for d in directories}
    known_bases = {b for b in bases.values() if b}
    if len(known_bases) > 1:
        detail = ", ".join(f"{d.name}: {b}" for d, b in bases.items())
        raise DataError(f"models were fine-tuned from different bases ({detail}); WARM averages one base's runs")
    for directory, layout in zip(directories[1:], files[1:], strict=True):
        config = _config(directory)
        for key in sorted(set(first_config) | set(config)):
            if first_config.get(key) != config.get(key):
                raise DataError(f"{directory} differs from {directories[0]} in config {key!r} "
                                f"({config.get(key)!r} vs {first_config.get(key)!r}): not the same architecture")
        if layout.tensor_file.keys() != files[0].tensor_file.keys():
            missing = sorted(set(files[0].tensor_file) ^ set(layout.tensor_file))[:3]
            raise DataError(f"{directory} has different tensors from {directories[0]} (e.g. {', '.join(missing)})")
    for name in files[0].tensor_file:
        shapes = set()
        for layout in files:
            with safe_open(str(layout.directory / layout.tensor_file[name]), framework="pt") as handle:
                shapes.add(tuple(handle.get_slice(name).get_shape()))
        if len(shapes) > 1:
            raise DataError(f"tensor {name!r} has different shapes across models: {sorted(shapes)}")
    return files


def normalised_weights(count: int, weights: Sequence[float] | None) -> list[float]:
    """Weights summing to one (uniform when none are given)."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise DataError(f"{len(weights)} weights given for {count} models")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise DataError("weights must be non-negative and not all zero")
    total = float(sum(weights))
    return [w / total for w in weights]


def average_weights(directories: Sequence[Path], output: Path, weights: Sequence[float] | None = None,
                    progress: Any = None) -> list[float]:
    """Write the weighted average of the models in ``directories`` into ``output`` (config and tokenizer copied).

    Tensors are summed in float32 and stored in the first model's dtype and shard layout. ``progress(done, total)``
    is called after every tensor. Returns the normalised weights used.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    directories = [Path(d) for d in directories]
    files = check_compatible(directories)
    used = normalised_weights(len(directories), weights)
    for item in directories[0].iterdir():
        if item.is_file() and not item.name.endswith(".safetensors") and item.name not in ("llmctl.json",):
            shutil.copy2(item, output / item.name)
    total, done = len(files[0].tensor_file), 0
    for shard in files[0].shards():
        names = [n for n, f in files[0].tensor_file.items() if f == shard]
        averaged: dict[str, Any] = {}
        for name in names:
            accumulator = None
            dtype = None
            for layout, weight in zip(files, used, strict=True):
                with safe_open(str(layout.directory / layout.tensor_file[name]), framework="pt") as handle:
                    tensor = handle.get_tensor(name)
                dtype = dtype or tensor.dtype
                term = tensor.to(torch.float32) * weight
                accumulator = term if accumulator is None else accumulator.add_(term)
            averaged[name] = accumulator.to(dtype).contiguous()
            done += 1
            if progress is not None:
                progress(done, total)
        save_file(averaged, str(output / shard), metadata={"format": "pt"})
        del averaged
    return used
