"""HF → GGUF tensor names and the per-tensor rewrites llama.cpp expects, driven by a family's :class:`GGUFMapping`.

Names come from the gguf library's maintained ``TensorNameMap`` for the architecture; the family's ``tensor_names``
add to or override it. The rewrites are the two llama.cpp applies when it converts: q/k rows reordered to its
interleaved rotary layout (``permute_qk``) and a constant added to norm weights (``norm_offset``, Gemma). Per-expert
tensors of a mixture-of-experts layer (``….experts.3.w1.weight``) become one stacked GGUF tensor per projection
(``blk.N.ffn_gate_exps.weight``, experts along the first axis), as llama.cpp wants them; experts already stacked the
way transformers holds them in memory (``….experts.gate_up_proj``, ``….experts.down_proj``) are split and named too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmctl.convert.safetensors_stream import TensorEntry
from llmctl.descriptors import Family, GGUFMapping
from llmctl.errors import DataError

if TYPE_CHECKING:
    import torch

# Tensors transformers keeps that llama.cpp recomputes itself.
ALWAYS_SKIPPED = ("rotary_emb.inv_freq",)


def find_gguf_mapping(config: Mapping[str, Any], model_name: str | None = None) -> tuple[Family, GGUFMapping]:
    """The family and GGUF mapping for a model: by its registry name when known, else by its ``model_type``.

    A named model (``smollm2-135m``) picks its own family's mapping (its pre-tokenizer differs from plain Llama's);
    anything else is found through the family that handles ``config["model_type"]``.
    """
    from llmctl.plugins import get_registry

    registry = get_registry()
    model_type = str(config.get("model_type", ""))
    candidates: list[Family] = []
    if model_name:
        found = registry.find_model(model_name)
        if found is not None:
            candidates.append(found[0])
    by_type = registry.family_for_model_type(model_type)
    if by_type is not None:
        candidates.append(by_type)
    candidates += [f for f in registry.all("family") if any(model_type in m.model_types for m in f.gguf)]
    for family in candidates:
        mapping = family.gguf_mapping(model_type)
        if mapping is not None:
            return family, mapping
    supported = sorted({t for f in registry.all("family") for m in f.gguf for t in m.model_types})
    raise DataError(f"no family plugin maps model type {model_type!r} to GGUF (supported: {', '.join(supported)}); "
                    "a family plugin adds one with Family(gguf=(GGUFMapping(...),))")


class TensorNamer:
    """Turns HF tensor names into GGUF names for one architecture and block count."""

    def __init__(self, mapping: GGUFMapping, block_count: int) -> None:
        import gguf

        arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == mapping.architecture), None)
        if arch is None:
            raise DataError(f"the gguf library does not know architecture {mapping.architecture!r}; upgrade gguf")
        self.mapping = mapping
        self.block_count = block_count
        self._library_map = gguf.get_tensor_name_map(arch, block_count)
        self._overrides = self._expand_overrides(mapping.tensor_names, block_count)

    @staticmethod
    def _expand_overrides(names: Mapping[str, str], block_count: int) -> dict[str, str]:
        expanded: dict[str, str] = {}
        for hf_name, gguf_name in names.items():
            if "{bid}" in hf_name:
                for bid in range(block_count):
                    expanded[hf_name.format(bid=bid)] = gguf_name.format(bid=bid)
            else:
                expanded[hf_name] = gguf_name
        return expanded

    def skipped(self, hf_name: str) -> bool:
        """Whether llama.cpp does without this tensor."""
        return hf_name in self.mapping.skip_tensors or hf_name.endswith(ALWAYS_SKIPPED)

    def gguf_name(self, hf_name: str) -> str:
        """The GGUF name of ``hf_name`` (``model.layers.0.self_attn.q_proj.weight`` → ``blk.0.attn_q.weight``)."""
        stem, dot, suffix = hf_name.rpartition(".")
        if suffix not in ("weight", "bias"):
            stem, dot, suffix = hf_name, "", ""
        if stem in self._overrides:
            return self._overrides[stem] + dot + suffix
        name = self._library_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise DataError(f"tensor {hf_name!r} has no GGUF name for architecture {self.mapping.architecture!r}; "
                            "the family plugin can add it in GGUFMapping.tensor_names")
        return name


@dataclass(frozen=True)
class PlannedTensor:
    """One GGUF tensor: its name and shape, and the HF tensors it is made of (several: experts stacked in order)."""

    name: str
    shape: tuple[int, ...]
    parts: tuple[TensorEntry, ...]
    half: int | None = None  # of a fused gate/up tensor: 0 the gate rows, 1 the up rows (second-to-last axis)


_EXPERT = re.compile(r"^(?P<stem>.+\.experts)\.(?P<index>\d+)\.(?P<rest>.+)$")
# transformers 5's own expert parameters, already stacked: [experts, 2 * ff, hidden] and [experts, hidden, ff]
_STACKED_EXPERTS = re.compile(r"^(?P<stem>.+\.experts)\.(?P<proj>\w+_proj)$")


def plan_tensors(entries: list[TensorEntry], namer: TensorNamer) -> list[PlannedTensor]:
    """The GGUF tensors for ``entries``: one per HF tensor, except per-expert tensors, stacked into one per projection.

    ``model.layers.0.block_sparse_moe.experts.{0..7}.w1.weight`` (each ``[ff, hidden]``) becomes
    ``blk.0.ffn_gate_exps.weight`` of shape ``[8, ff, hidden]``, named through the expert-index-free HF name.
    """
    groups: dict[str, dict[int, TensorEntry]] = {}
    planned: list[PlannedTensor | str] = []
    for entry in entries:
        if _STACKED_EXPERTS.match(entry.name):
            planned += _already_stacked(entry, namer)
            continue
        match = _EXPERT.match(entry.name)
        if match is None:
            planned.append(PlannedTensor(namer.gguf_name(entry.name), entry.shape, (entry,)))
            continue
        key = f"{match['stem']}.{match['rest']}"
        if key not in groups:
            groups[key] = {}
            planned.append(key)
        groups[key][int(match["index"])] = entry
    return [item if isinstance(item, PlannedTensor) else _stacked(item, groups[item], namer) for item in planned]


def _already_stacked(entry: TensorEntry, namer: TensorNamer) -> list[PlannedTensor]:
    """``experts.down_proj`` as it is; ``experts.gate_up_proj`` as its gate half and its up half (gate first)."""
    stem, _, proj = entry.name.rpartition(".")
    if proj != "gate_up_proj":
        return [PlannedTensor(namer.gguf_name(f"{entry.name}.weight"), entry.shape, (entry,))]
    *experts, rows, columns = entry.shape
    shape = (*experts, rows // 2, columns)
    return [PlannedTensor(namer.gguf_name(f"{stem}.{half}_proj.weight"), shape, (entry,), index)
            for index, half in enumerate(("gate", "up"))]


def _stacked(key: str, experts: Mapping[int, TensorEntry], namer: TensorNamer) -> PlannedTensor:
    parts = tuple(experts[index] for index in sorted(experts))
    if sorted(experts) != list(range(len(experts))) or len({part.shape for part in parts}) != 1:
        raise DataError(f"expert tensors {key!r}: expected experts 0 to {len(experts) - 1} of one shape, found "
                        f"{', '.join(f'{i}: {list(experts[i].shape)}' for i in sorted(experts))}")
    return PlannedTensor(namer.gguf_name(key), (len(parts), *parts[0].shape), parts)


_Q_OR_K = re.compile(r"\.(q_proj|k_proj)\.weight$")


def rotary_permute(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Reorder a q/k projection's rows from rotate-half pairs (i, i + d/2) to llama.cpp's adjacent pairs (2i, 2i+1)."""
    rows = weight.shape[0]
    return (weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2)
            .reshape(weight.shape))


def rewrite_tensor(hf_name: str, tensor: torch.Tensor, mapping: GGUFMapping,
                   config: Mapping[str, Any]) -> torch.Tensor:
    """The tensor as llama.cpp wants it: float32, q/k rows permuted when asked, norm offset added."""
    tensor = tensor.float()
    match = _Q_OR_K.search(hf_name)
    if mapping.permute_qk and match:
        heads = int(config["num_attention_heads"])
        if match.group(1) == "k_proj":
            heads = int(config.get("num_key_value_heads") or heads)
        tensor = rotary_permute(tensor, heads)
    if mapping.norm_offset and hf_name.endswith("norm.weight"):
        tensor = tensor + mapping.norm_offset
    return tensor
