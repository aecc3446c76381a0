"""The torchao quantizer: weight-only int8 (and int4 where torchao has a kernel) saved as safetensors."""

import importlib.util

from llmctl.descriptors import Quantizer
from llmctl.hookspecs import hookimpl

SCHEMES = {"int8": 8.0, "int8-dynamic": 8.0, "int4": 4.0}
HELP = {
    "int8": "int8 weights, one scale per output row; bf16 activations (weight-only)",
    "int8-dynamic": "int8 weights and dynamically quantized int8 activations",
    "int4": "int4 weights in groups of 128 (needs the mslk kernel package)",
}


def _available(scheme):
    if importlib.util.find_spec("torchao") is None:
        return False, "torchao is not installed (pip install 'llmctl[torchao]')"
    if scheme == "int4" and importlib.util.find_spec("mslk") is None:
        return False, "torchao 0.18's int4 weight-only layout needs the mslk kernel package, not installed here"
    return True, ""


def _quantize(source, scheme, folder, **options):
    from llmctl_plugins.quantizers.torchao._impl import quantize_torchao

    return quantize_torchao(source, scheme, folder, **options)


def _load(artefact, dtype):
    from llmctl_plugins.quantizers.torchao._impl import load_torchao

    return load_torchao(artefact, dtype)


@hookimpl
def register_quantizers(register):
    """Register the torchao quantizer."""
    register(Quantizer(
        name="torchao",
        description="PyTorch-native quantization (torchao); safetensors that transformers reloads",
        schemes=tuple(SCHEMES),
        backends=("cpu", "cuda"),
        quantize=_quantize,
        available=_available,
        bits=SCHEMES,
        scheme_help=HELP,
        output_format="safetensors", list_order=20,
        load=_load,
        extra="torchao",
        package="torchao",
    ))
