"""An example third-party llmctl plugin: one model family and one command.

Install it next to llmctl (``pip install ./docs/examples/llmctl-hello``) and it appears in ``llmctl plugins``,
``llmctl models`` and ``llmctl --help`` with no change to llmctl itself.
"""

import typer

from llmctl.api import Family, ModelSpec, get_registry, hookimpl

TINYSTORIES_33M = {
    "model_type": "gpt_neo",
    "hidden_size": 768,
    "num_layers": 4,
    "num_heads": 16,
    "attention_types": [[["global", "local"], 2]],
    "window_size": 256,
    "vocab_size": 50257,
    "max_position_embeddings": 2048,
}


@hookimpl
def register_families(register):
    """Register the TinyStories family with one model and a short alias."""
    register(Family(
        name="tinystories",
        description="TinyStories small GPT-Neo models (example plugin)",
        model_types=("gpt_neo",),
        models=(ModelSpec("tinystories-33m", "roneneldan/TinyStories-33M", TINYSTORIES_33M, aliases=("stories",)),),
        lora_target_modules=("q_proj", "k_proj", "v_proj", "out_proj"),
        tiny_config={**TINYSTORIES_33M, "hidden_size": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 512,
                     "attention_types": [[["global", "local"], 1]]},
    ))


@hookimpl
def register_commands(app):
    """Add ``llmctl hello``."""

    @app.command()
    def hello(name: str = typer.Argument("world", help="Who to greet.")) -> None:
        """Say hello, and count the model families llmctl knows."""
        families = get_registry().names("family")
        typer.echo(f"Hello, {name}! llmctl knows {len(families)} model families.")
