"""torchao quantization through transformers' ``TorchAoConfig``: the artefact reloads with plain ``from_pretrained``.

transformers quantizes each weight as it loads the float model, records the torchao config in ``config.json`` and
saves torchao's tensors as safetensors, so the result needs no custom loader.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.errors import ResourceError
from llmctl.quantize.result import QuantizedOutput
from llmctl.quantize.safetensors_output import float_source_dir, quiet_transformers, save_quantized_model
from llmctl.store import Artifact

DTYPE = "bfloat16"


def quiet_torchao() -> None:
    """Silence torchao's import-time notes about CUDA-only kernels it cannot load on a CPU machine."""
    import logging

    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


def torchao_config(scheme: str) -> Any:
    """The torchao config object for a scheme name."""
    quiet_torchao()
    from torchao import quantization

    if scheme == "int8":
        return quantization.Int8WeightOnlyConfig()
    if scheme == "int8-dynamic":
        return quantization.Int8DynamicActivationInt8WeightConfig()
    if scheme == "int4":
        return quantization.Int4WeightOnlyConfig(group_size=128)
    raise ValueError(scheme)


def quantize_torchao(source: Artifact, scheme: str, folder: Path, *, scratch: Path,
                     status: Callable[[str], None] | None = None, **_: Any) -> QuantizedOutput:
    """Load ``source`` quantized with torchao ``scheme`` and save it (safetensors) with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, TorchAoConfig

    say = status or (lambda text: None)
    quiet_torchao()
    model_dir = float_source_dir(source, scratch, status)
    quiet_transformers()
    say(f"loading {source.name} and quantizing its linear layers to torchao {scheme}")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16,
                                                     quantization_config=TorchAoConfig(torchao_config(scheme)))
    except (NotImplementedError, RuntimeError, ImportError) as error:
        raise ResourceError(f"torchao {scheme} failed on this machine: {str(error).splitlines()[0][:160]}") from error
    say("saving safetensors")
    import torchao

    return save_quantized_model(model.eval(), model_dir, folder, scheme,
                                {"torchao_version": torchao.__version__, "compute_dtype": DTYPE,
                                 "loader": "transformers from_pretrained (quantization_config in config.json)"})


def load_torchao(artefact: Artifact, dtype: str) -> Any:
    """A torchao artefact through plain ``from_pretrained`` (its config.json holds the torchao config)."""
    from llmctl.models.loading import load_causal_lm

    quiet_torchao()
    quiet_transformers()
    return load_causal_lm(artefact.path, dtype=dtype)
