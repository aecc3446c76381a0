"""DPO (sigmoid, with label smoothing) and IPO: preference optimisation without a reward model."""

from llmctl_plugins.methods._align_common import ADAPTER_DEFAULTS, ADAPTER_HELP

from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl

DPO_DEFAULTS = {**ADAPTER_DEFAULTS, "learning_rate": 5e-5, "beta": 0.1, "label_smoothing": 0.0,
                "loss_type": "sigmoid", "batch_size": 2}
DPO_HELP = {
    **ADAPTER_HELP,
    "beta": "strength of the KL tie to the reference (higher: stay closer)",
    "label_smoothing": "assumed share of flipped labels (conservative DPO); 0 for plain DPO",
    "loss_type": "sigmoid (DPO) or ipo",
}


def _build():
    from llmctl_plugins.methods._dpo_impl import DpoMethod

    return DpoMethod()


@hookimpl
def register_methods(register):
    """Register dpo."""
    register(Method("dpo", "DPO / IPO on preference pairs; reference = base with the adapter disabled",
                    kind="preference", defaults=DPO_DEFAULTS, build=_build, settings_help=DPO_HELP))
