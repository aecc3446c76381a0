"""KTO (Kahneman–Tversky optimisation): alignment from unpaired thumbs-up / thumbs-down completions."""

from dataclasses import dataclass

from llmctl.config import Range
from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.settings_schema import setting
from llmctl.train.adapters import AdapterSettings


@dataclass
class KtoSettings(AdapterSettings):
    """KTO's settings: the adapter, the strength of the tie to the reference and the weight of each label."""

    learning_rate: float = 5e-5
    batch_size: int = setting(4, "rows per micro-batch and process; at least 2, since the KL reference point pairs "
                                 "each prompt with another row's completion", range=Range(2))
    beta: float = setting(0.1, "strength of the KL tie to the reference (higher: stay closer)",
                          range=Range(0, low_open=True))
    desirable_weight: float = setting(1.0, "weight of the loss on rows labelled true", range=Range(0, low_open=True))
    undesirable_weight: float = setting(1.0, "weight of the loss on rows labelled false",
                                        range=Range(0, low_open=True))


def _build():
    from llmctl_plugins.methods.kto._method import KtoMethod

    return KtoMethod()


@hookimpl
def register_methods(register):
    """Register kto."""
    register(Method("kto", "KTO on unpaired completions labelled good/bad; reference = base with the adapter "
                           "disabled", kind="preference", settings=KtoSettings, build=_build))
