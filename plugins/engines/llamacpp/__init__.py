"""The llama.cpp engine: GGUF files through llama-cpp-python (optional extra ``llamacpp``)."""

import importlib.util

from llmctl.descriptors import Engine
from llmctl.hookspecs import hookimpl


def _available():
    if importlib.util.find_spec("llama_cpp") is None:
        return False, "llama-cpp-python is not installed (pip install 'llmctl[llamacpp]')"
    return True, ""


def _load(artefact, **options):
    from llmctl_plugins.engines.llamacpp._chat import load_llamacpp_engine, require_gguf

    try:
        return load_llamacpp_engine(artefact, **options)
    except ValueError as error:  # llama-cpp-python's whole report of a model llama.cpp refused: "Failed to load …"
        if not str(error).startswith("Failed to load model"):
            raise
        from llmctl.models.gguf_import import gguf_load_error

        raise gguf_load_error(require_gguf(artefact), "llama.cpp") from None


@hookimpl
def register_engines(register):
    """Register the llama.cpp engine."""
    register(Engine(
        name="llama.cpp",
        description="llama.cpp through llama-cpp-python: quantized GGUF models, fastest on CPU",
        formats=("gguf",),
        available=_available,
        load=_load,
        priority=10, gguf_native=True,
        extra="llamacpp",
        package="llama-cpp-python",
    ))
