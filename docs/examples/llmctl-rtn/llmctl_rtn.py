"""An example llmctl quantizer plugin: round-to-nearest (RTN) weight-only int8 and int4, written as safetensors.

Each 2-D weight (out × in, embeddings aside) is cut into groups of ``GROUP`` inputs; a group's scale is its largest
magnitude over the largest integer, and each weight is stored as ``round(w / scale)``: int8, or int4 packed two to
a byte. Norms, biases and embeddings stay as they were. ``load`` dequantizes into a plain transformers model, so
``llmctl chat``, ``benchmark`` and ``quantize --eval`` run the result with no further code.

    llmctl quantize MODEL --method rtn:int4        # writes the artefact MODEL-rtn-int4 in the store
    llmctl chat MODEL-rtn-int4
"""

from pathlib import Path
from typing import Any

from llmctl.api import (
    Artifact,
    QuantizedOutput,
    Quantizer,
    count_parameters,
    float_source_dir,
    hookimpl,
    load_tokenizer,
    weight_bytes,
)

BITS = {"int8": 8, "int4": 4}
GROUP = 32
WEIGHTS = "model.rtn.safetensors"


def quantize_tensor(weight: Any, bits: int) -> tuple[Any, Any]:
    """``(integers, scales)`` of a 2-D weight: int8 values, or int4 values packed two to a uint8."""
    import torch

    groups = weight.float().reshape(weight.shape[0], -1, GROUP)
    top = 2 ** (bits - 1) - 1
    scales = (groups.abs().amax(dim=-1, keepdim=True) / top).clamp(min=1e-12)
    values = torch.round(groups / scales).clamp(-top - 1, top).to(torch.int8).reshape(weight.shape)
    if bits == 4:  # shift to 0..15 and pack pairs: low nibble first
        shifted = (values + 8).to(torch.uint8)
        values = shifted[:, 0::2] | (shifted[:, 1::2] << 4)
    return values, scales.squeeze(-1).half()


def dequantize_tensor(values: Any, scales: Any, bits: int, dtype: Any) -> Any:
    """The float weight back from ``quantize_tensor``'s output."""
    import torch

    if bits == 4:
        values = torch.stack([(values & 15).to(torch.int8) - 8, (values >> 4).to(torch.int8) - 8], dim=-1)
        values = values.reshape(values.shape[0], -1)
    groups = values.float().reshape(values.shape[0], -1, GROUP) * scales.float().unsqueeze(-1)
    return groups.reshape(values.shape).to(dtype)


def quantize(source: Artifact, scheme: str, folder: Path, *, scratch: Path, status: Any = None,
             **_: Any) -> QuantizedOutput:
    """Write ``source`` quantized with ``scheme`` into ``folder``: weights, config and tokenizer."""
    import shutil

    from safetensors.torch import load_file, save_file

    bits = BITS[scheme]
    model_dir = float_source_dir(source, scratch, status)  # a GGUF-only source is dequantized first
    if status:
        status(f"rounding {source.name}'s weights to {scheme}")
    tensors: dict[str, Any] = {}
    for shard in sorted(model_dir.glob("*.safetensors")):
        for name, weight in load_file(shard).items():
            if weight.ndim == 2 and "embed" not in name and weight.shape[1] % GROUP == 0:
                tensors[name + ".q"], tensors[name + ".scale"] = quantize_tensor(weight, bits)
            else:
                tensors[name] = weight
    save_file(tensors, folder / WEIGHTS)
    for name in ("config.json", "generation_config.json"):
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, folder / name)
    load_tokenizer(model_dir).save_pretrained(folder)
    return QuantizedOutput("safetensors", scheme, parameters=count_parameters(model_dir),
                           weight_bytes=weight_bytes(folder), details={"group_size": GROUP})


def load(artefact: Artifact, dtype: str) -> Any:
    """A transformers model with the artefact's weights dequantized to ``dtype``."""
    import torch
    from safetensors.torch import load_file
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, AutoConfig

    torch_dtype = getattr(torch, dtype, torch.float32)
    bits = BITS[artefact.meta["quantization"]["scheme"]]  # llmctl.json records what wrote the artefact
    raw = load_file(artefact.path / WEIGHTS)
    state = {}
    for name, tensor in raw.items():
        if name.endswith(".q"):
            state[name[:-2]] = dequantize_tensor(tensor, raw[name[:-2] + ".scale"], bits, torch_dtype)
        elif not name.endswith(".scale"):
            state[name] = tensor.to(torch_dtype) if tensor.is_floating_point() else tensor
    config = AutoConfig.from_pretrained(artefact.path)
    model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]  # from weights in memory: the concrete class
    return model_class.from_pretrained(None, config=config, state_dict=state, dtype=torch_dtype).eval()


@hookimpl
def register_quantizers(register):
    """Register the ``rtn`` quantizer with its two schemes."""
    register(Quantizer(
        name="rtn",
        description="round-to-nearest weight-only int8/int4 in groups of 32 (example plugin)",
        schemes=tuple(BITS),
        backends=("cpu", "cuda"),
        quantize=quantize,
        bits={"int8": 8 + 16 / GROUP, "int4": 4 + 16 / GROUP},  # an fp16 scale per group of 32
        scheme_help={"int8": "int8 weights, one fp16 scale per 32 inputs",
                     "int4": "int4 weights packed two per byte, one fp16 scale per 32 inputs"},
        output_format="safetensors",
        load=load,
    ))
