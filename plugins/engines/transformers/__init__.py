"""The transformers engine: any Hugging Face artefact, LoRA/DoRA adapters through peft, proxy-tuning."""

from llmctl.descriptors import Engine
from llmctl.hookspecs import hookimpl


def _load(artefact, **options):
    from llmctl_plugins.engines.transformers._chat import load_transformers_engine

    return load_transformers_engine(artefact, **options)


@hookimpl
def register_engines(register):
    """Register the transformers engine."""
    register(Engine(
        name="transformers",
        description="PyTorch + transformers with a KV cache kept across turns; adapters (peft) and proxy-tuning",
        formats=("safetensors", "gguf", "pytorch"),  # pytorch (pickle .bin) only with --allow-pickle
        load=_load,
        priority=0,
        features=("adapter", "proxy"),
    ))
