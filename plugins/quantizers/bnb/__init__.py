"""The bitsandbytes quantizer: NF4 / int8 weights on NVIDIA GPUs (bitsandbytes runs on the CUDA backend)."""

import importlib.util

from llmctl.descriptors import Quantizer
from llmctl.hookspecs import hookimpl

SCHEMES = {"nf4": 4.0, "int8": 8.0}
HELP = {"nf4": "4-bit NormalFloat with double quantization (the QLoRA format)",
        "int8": "LLM.int8(): int8 weights with fp16 outliers"}


def _available(scheme):
    from llmctl.plugins import get_registry

    cuda = get_registry().get("backend", "cuda").probe()
    if not cuda.usable:
        return False, f"needs the CUDA backend (an NVIDIA GPU): {cuda.reason}"
    if importlib.util.find_spec("bitsandbytes") is None:
        return False, "bitsandbytes is not installed (pip install 'llmctl[cuda]')"
    return True, ""


def _quantize(source, scheme, folder, **options):
    from llmctl_plugins.quantizers.bnb._impl import quantize_bnb

    return quantize_bnb(source, scheme, folder, **options)


@hookimpl
def register_quantizers(register):
    """Register the bitsandbytes quantizer."""
    register(Quantizer(
        name="bnb",
        description="bitsandbytes NF4 / LLM.int8() on CUDA; safetensors that transformers reloads on a GPU",
        schemes=tuple(SCHEMES),
        backends=("cuda",),
        quantize=_quantize,
        available=_available,
        bits=SCHEMES,
        scheme_help=HELP,
        output_format="safetensors", list_order=40,
        extra="cuda",
        package="bitsandbytes",
    ))
