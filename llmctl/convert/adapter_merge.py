"""Merge a peft LoRA / DoRA adapter into its base model shard by shard: peak memory ≈ the largest base shard.

The adapter (small) is read whole; each base shard is loaded, the adapted weights in it are updated with exactly the
formulas peft's ``merge_and_unload`` uses, and the shard is written before the next one is read:

- LoRA (linear): ``W += s · B A`` with ``s = alpha / r`` (``alpha / √r`` with rsLoRA; per-module rank/alpha patterns).
- LoRA (embedding): ``W += s · (B A)ᵀ``.
- DoRA: ``W' = m / ‖W + ΔW‖ · (W + ΔW)``, the norm taken per output row (per embedding column for embeddings).
- ``modules_to_save`` and saved embedding layers replace the base tensor outright.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.convert.safetensors_stream import INDEX_FILE, weight_files
from llmctl.errors import DataError
from llmctl.models.adapters import ADAPTER_CONFIG

if TYPE_CHECKING:
    import torch

ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
# files of a model directory copied as they are (everything but the weights)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@dataclass
class ModuleAdapter:
    """The adapter tensors of one adapted module."""

    lora_a: torch.Tensor | None = None
    lora_b: torch.Tensor | None = None
    lora_b_bias: torch.Tensor | None = None
    magnitude: torch.Tensor | None = None
    embedding: bool = False


@dataclass
class LoadedAdapter:
    """A peft adapter: its settings, its per-module tensors and the whole tensors it replaces."""

    config: dict[str, Any]
    modules: dict[str, ModuleAdapter] = field(default_factory=dict)
    replacements: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """``dora`` or ``lora``."""
        return "dora" if self.config.get("use_dora") else "lora"

    def scaling(self, module: str) -> float:
        """peft's scaling for ``module``: alpha / r (alpha / √r with rsLoRA), per-module patterns honoured."""
        rank = self.config.get("r", 8)
        alpha = self.config.get("lora_alpha", rank)
        rank = _pattern_value(self.config.get("rank_pattern") or {}, module, rank)
        alpha = _pattern_value(self.config.get("alpha_pattern") or {}, module, alpha)
        return alpha / math.sqrt(rank) if self.config.get("use_rslora") else alpha / rank


def _pattern_value(patterns: Mapping[str, Any], module: str, default: Any) -> Any:
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


_ADAPTER_KEY = re.compile(r"^(?P<module>.+?)\.(?P<part>lora_A\.weight|lora_B\.weight|lora_B\.bias|"
                          r"lora_embedding_A|lora_embedding_B|lora_magnitude_vector)$")


def load_adapter(adapter_dir: Path) -> LoadedAdapter:
    """Read a peft adapter directory (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    try:
        config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{adapter_dir}: not a peft adapter ({ADAPTER_CONFIG}: {exc})") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise DataError(f"{adapter_dir}: only LoRA/DoRA adapters can be merged, not {config.get('peft_type')}")
    weights = adapter_dir / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise DataError(f"{adapter_dir}: no {ADAPTER_WEIGHTS} (pickled adapters are not read)")
    adapter = LoadedAdapter(config)
    for key, tensor in load_file(str(weights)).items():
        name = key.removeprefix(PEFT_PREFIX)
        match = _ADAPTER_KEY.match(name)
        if match is None:  # a whole tensor: modules_to_save or a saved embedding layer
            adapter.replacements[name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")] = tensor
            continue
        module = adapter.modules.setdefault(match["module"], ModuleAdapter())
        part = match["part"]
        if part in ("lora_A.weight", "lora_embedding_A"):
            module.lora_a = tensor
        elif part in ("lora_B.weight", "lora_embedding_B"):
            module.lora_b = tensor
        elif part == "lora_B.bias":
            module.lora_b_bias = tensor
        else:
            module.magnitude = tensor
        module.embedding = module.embedding or part.startswith("lora_embedding")
    return adapter


def merged_weight(weight: torch.Tensor, module: ModuleAdapter, scaling: float, fan_in_fan_out: bool = False
                  ) -> torch.Tensor:
    """``weight`` with one module's LoRA/DoRA update applied (computed in float32, returned in its own dtype)."""
    if module.lora_a is None or module.lora_b is None:
        raise DataError("adapter has an incomplete LoRA pair (lora_A without lora_B)")
    base = weight.float()
    delta = (module.lora_b.float() @ module.lora_a.float()) * scaling
    if module.embedding or fan_in_fan_out:
        delta = delta.T
    merged = base + delta
    if module.magnitude is not None:
        # peft's DoRA: the norm is taken over each output row of the (out, in) weight
        rowwise = not (module.embedding or fan_in_fan_out)
        norm = merged.norm(p=2, dim=1 if rowwise else 0).detach()
        factor = module.magnitude.float() / norm
        merged = (factor.view(-1, 1) if rowwise else factor.view(1, -1)) * merged
    return merged.to(weight.dtype)


ProgressCallback = Callable[[int, int, str], None]


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path,
                  progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Write ``base_dir`` with the adapter of ``adapter_dir`` merged into ``out_dir``, one base shard at a time.

    Returns a summary: ``method``, ``merged`` (modules updated), ``replaced`` (whole tensors) and ``shards``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    base_dir, out_dir = Path(base_dir), Path(out_dir)
    adapter = load_adapter(adapter_dir)
    fan_in_fan_out = bool(adapter.config.get("fan_in_fan_out"))
    shards = weight_files(base_dir)
    pending_modules, pending_replacements = set(adapter.modules), set(adapter.replacements)
    for number, shard in enumerate(shards, start=1):
        with safe_open(str(shard), framework="pt") as handle:
            metadata = handle.metadata() or {"format": "pt"}
        tensors = load_file(str(shard))
        for name in list(tensors):
            module_name = name.rsplit(".", 1)[0]
            if name in adapter.replacements:  # a saved whole tensor first; a LoRA pair may still apply on top
                tensors[name] = adapter.replacements[name].to(tensors[name].dtype)
                pending_replacements.discard(name)
            if name.endswith(".weight") and module_name in adapter.modules:
                module = adapter.modules[module_name]
                tensors[name] = merged_weight(tensors[name], module, adapter.scaling(module_name), fan_in_fan_out)
                pending_modules.discard(module_name)
            elif name.endswith(".bias") and module_name in adapter.modules:
                module = adapter.modules[module_name]
                if module.lora_b_bias is not None:
                    scaled = module.lora_b_bias.float() * adapter.scaling(module_name)
                    tensors[name] = (tensors[name].float() + scaled).to(tensors[name].dtype)
        save_file(tensors, str(out_dir / shard.name), metadata=metadata)
        del tensors
        if progress is not None:
            progress(number, len(shards), shard.name)
    missing = sorted(pending_modules | pending_replacements)
    if missing:
        raise DataError(f"the adapter names modules the base model lacks (wrong base model?): {', '.join(missing[:3])}")
    _copy_model_files(base_dir, out_dir)
    return {"method": adapter.method, "merged": len(adapter.modules), "replaced": len(adapter.replacements),
            "shards": len(shards)}


def _copy_model_files(base_dir: Path, out_dir: Path) -> None:
    """Config, tokenizer, chat template and shard index: every file of the base model but its weights."""
    for path in base_dir.iterdir():
        if path.is_file() and not path.name.endswith(_WEIGHT_SUFFIXES) and path.name != "llmctl.json":
            shutil.copy2(path, out_dir / path.name)
    index = base_dir / INDEX_FILE
    if index.is_file():
        shutil.copy2(index, out_dir / INDEX_FILE)
