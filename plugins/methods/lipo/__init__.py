"""LiPO-λ (Liu et al. 2024): listwise preference optimisation with the LambdaLoss weighting of learning-to-rank."""

from dataclasses import dataclass

from llmctl.config import Range
from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.settings_schema import setting
from llmctl.train.adapters import AdapterSettings


@dataclass
class LipoSettings(AdapterSettings):
    """LiPO's settings: the adapter, the strength of the tie to the reference and the longest list trained on."""

    learning_rate: float = 5e-5
    batch_size: int = setting(2, "lists per micro-batch and process (each list is up to list_size rows)",
                              range=Range(1))
    beta: float = setting(0.1, "scale of the policy-to-reference log-ratio that ranks responses (higher: stay "
                               "closer to the reference)", range=Range(0, low_open=True))
    list_size: int = setting(8, "most responses per list; a longer list keeps the best, the worst and evenly "
                                "spaced ranks between", range=Range(2))


def _build():
    from llmctl_plugins.methods.lipo._method import LipoMethod

    return LipoMethod()


@hookimpl
def register_methods(register):
    """Register lipo."""
    register(Method("lipo", "LiPO-λ on lists of scored responses (listwise DPO with LambdaLoss weights); "
                            "reference = base with the adapter disabled", kind="preference", settings=LipoSettings,
                    build=_build))
