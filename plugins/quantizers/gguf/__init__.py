"""The GGUF quantizer: block types the ``gguf`` library writes, K-quants through llama.cpp's own quantizer."""

import importlib.util

from llmctl.descriptors import Quantizer
from llmctl.hookspecs import hookimpl

# Written tensor by tensor by llmctl's GGUF exporter (the gguf library's reference quantizers).
WRITER_SCHEMES = {"f16": 16.0, "bf16": 16.0, "q8_0": 8.5, "q5_1": 6.0, "q5_0": 5.5, "q4_1": 5.0, "q4_0": 4.5}
# Written by llama.cpp's quantizer (llama-cpp-python) from an f16 GGUF; mixes are nominal (llama.cpp's own figures).
LLAMACPP_SCHEMES = {"q6_k": 6.56, "q5_k_m": 5.69, "q5_k_s": 5.54, "q4_k_m": 4.89, "q4_k_s": 4.58, "q3_k_l": 4.27,
                    "q3_k_m": 3.91, "q3_k_s": 3.5, "q2_k": 3.0}
HELP = {
    "f16": "half precision, no quantization (the reference for --eval)",
    "bf16": "bfloat16, no quantization",
    "q8_0": "8-bit blocks of 32, one scale each: near-lossless",
    "q5_1": "5-bit blocks with scale and minimum",
    "q5_0": "5-bit blocks with one scale",
    "q4_1": "4-bit blocks with scale and minimum",
    "q4_0": "4-bit blocks with one scale: smallest of the simple types",
    "q6_k": "K-quant 6-bit super-blocks",
    "q5_k_m": "K-quant mix, mostly 5-bit",
    "q5_k_s": "K-quant 5-bit",
    "q4_k_m": "K-quant mix, mostly 4-bit: the usual default for local chat",
    "q4_k_s": "K-quant 4-bit",
    "q3_k_l": "K-quant mix, 3-bit (large)",
    "q3_k_m": "K-quant mix, 3-bit (medium)",
    "q3_k_s": "K-quant 3-bit",
    "q2_k": "K-quant 2-bit mix: large quality loss",
}


def _available(scheme):
    if scheme in LLAMACPP_SCHEMES and importlib.util.find_spec("llama_cpp") is None:
        return False, "llama-cpp-python is not installed (pip install 'llmctl[llamacpp]')"
    return True, ""


def _quantize(source, scheme, folder, **options):
    from llmctl_plugins.quantizers.gguf._impl import quantize_gguf

    return quantize_gguf(source, scheme, folder, llamacpp=scheme in LLAMACPP_SCHEMES, **options)


@hookimpl
def register_quantizers(register):
    """Register the GGUF quantizer."""
    register(Quantizer(
        name="gguf",
        description="GGUF files for llama.cpp: simple block types by the gguf library, K-quants by llama.cpp",
        schemes=(*WRITER_SCHEMES, *LLAMACPP_SCHEMES),
        backends=("cpu",),
        quantize=_quantize,
        available=_available,
        bits={**WRITER_SCHEMES, **LLAMACPP_SCHEMES},
        scheme_help=HELP,
        output_format="gguf", artifact_name="{source}-{scheme}", list_order=10,
        scheme_needs=dict.fromkeys(LLAMACPP_SCHEMES, "[llamacpp]"),
    ))
