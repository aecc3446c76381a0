"""The quanto quantizer (optimum-quanto): int8 / int4 weights, the fastest torch quantization on CPU here."""

import importlib.util

from llmctl.descriptors import Quantizer
from llmctl.hookspecs import hookimpl

SCHEMES = {"int8": 8.0, "int4": 4.0}
HELP = {"int8": "int8 weights (qint8), bf16 activations", "int4": "int4 weights (qint4) in groups, bf16 activations"}


def _available(scheme):
    if importlib.util.find_spec("optimum") is None or importlib.util.find_spec("optimum.quanto") is None:
        return False, "optimum-quanto is not installed (pip install 'llmctl[quanto]')"
    return True, ""


def _quantize(source, scheme, folder, **options):
    from llmctl_plugins.quantizers.quanto._impl import quantize_quanto

    return quantize_quanto(source, scheme, folder, **options)


def _load(artefact, dtype):
    from llmctl_plugins.quantizers.quanto._impl import load_quanto

    return load_quanto(artefact, dtype)


@hookimpl
def register_quantizers(register):
    """Register the quanto quantizer."""
    register(Quantizer(
        name="quanto",
        description="optimum-quanto weight quantization; safetensors plus a quantization map, reloaded by quanto",
        schemes=tuple(SCHEMES),
        backends=("cpu", "cuda", "mps"),
        quantize=_quantize,
        available=_available,
        bits=SCHEMES,
        scheme_help=HELP,
        output_format="safetensors", list_order=30,
        load=_load,
        extra="quanto",
        package="optimum-quanto",
    ))
