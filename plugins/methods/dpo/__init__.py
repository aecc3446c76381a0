"""DPO (sigmoid, with label smoothing) and IPO: preference optimisation without a reward model."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmctl.config import Range
from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.settings_schema import setting
from llmctl.train.adapters import AdapterSettings


@dataclass
class DpoSettings(AdapterSettings):
    """DPO's settings: the adapter, the strength of the tie to the reference and the loss."""

    learning_rate: float = 5e-5
    batch_size: int = 2
    beta: float = setting(0.1, "strength of the KL tie to the reference (higher: stay closer)",
                          range=Range(0, low_open=True))
    label_smoothing: float = setting(0.0, "assumed share of flipped labels (conservative DPO); 0 for plain DPO",
                                     range=Range(0, 0.5, high_open=True))
    loss_type: str = setting("sigmoid", "sigmoid (DPO) or ipo", choices=("sigmoid", "ipo"))


def _validate(values: Mapping[str, Any]) -> str | None:
    """Label smoothing is part of the sigmoid loss only; IPO would ignore it silently."""
    if values["loss_type"] == "ipo" and values["label_smoothing"]:
        return "label_smoothing applies to loss_type=sigmoid only; set label_smoothing=0 for ipo"
    return None


def _build():
    from llmctl_plugins.methods.dpo._method import DpoMethod

    return DpoMethod()


@hookimpl
def register_methods(register):
    """Register dpo."""
    register(Method("dpo", "DPO / IPO on preference pairs; reference = base with the adapter disabled",
                    kind="preference", settings=DpoSettings, build=_build, validate=_validate))
