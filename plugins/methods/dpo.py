"""DPO (sigmoid, with label smoothing) and IPO: preference optimisation without a reward model."""

from collections.abc import Mapping
from typing import Any

from llmctl_plugins.methods._align_common import ADAPTER_CHOICES, ADAPTER_DEFAULTS, ADAPTER_HELP, ADAPTER_RANGES

from llmctl.descriptors import Method, Range
from llmctl.hookspecs import hookimpl

DPO_DEFAULTS = {**ADAPTER_DEFAULTS, "learning_rate": 5e-5, "beta": 0.1, "label_smoothing": 0.0,
                "loss_type": "sigmoid", "batch_size": 2}
DPO_CHOICES = {**ADAPTER_CHOICES, "loss_type": ("sigmoid", "ipo")}
DPO_RANGES = {**ADAPTER_RANGES, "beta": Range(0, low_open=True), "label_smoothing": Range(0, 0.5, high_open=True)}
DPO_HELP = {
    **ADAPTER_HELP,
    "beta": "strength of the KL tie to the reference (higher: stay closer)",
    "label_smoothing": "assumed share of flipped labels (conservative DPO); 0 for plain DPO",
    "loss_type": "sigmoid (DPO) or ipo",
}


def _validate(values: Mapping[str, Any]) -> str | None:
    """Label smoothing is part of the sigmoid loss only; IPO would ignore it silently."""
    if values["loss_type"] == "ipo" and values["label_smoothing"]:
        return "label_smoothing applies to loss_type=sigmoid only; set label_smoothing=0 for ipo"
    return None


def _build():
    from llmctl_plugins.methods._dpo_impl import DpoMethod

    return DpoMethod()


@hookimpl
def register_methods(register):
    """Register dpo."""
    register(Method("dpo", "DPO / IPO on preference pairs; reference = base with the adapter disabled",
                    kind="preference", defaults=DPO_DEFAULTS, build=_build, settings_help=DPO_HELP,
                    choices=DPO_CHOICES, ranges=DPO_RANGES, validate=_validate))
