"""Full fine-tuning: every weight trains with AdamW; the result is a whole model."""

from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl


def _build():
    from llmctl_plugins.methods._full_impl import FullMethod

    return FullMethod()


@hookimpl
def register_methods(register):
    """Register full fine-tuning."""
    register(Method("full", "Full fine-tuning: all weights, AdamW (needs ~16 bytes per parameter)",
                    defaults={"learning_rate": 2e-5}, build=_build, output="model"))
