"""Reward models: a sequence-classification head on the family's model, trained on preference pairs."""

from dataclasses import dataclass

from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.train.adapters import AdapterSettings


@dataclass
class RewardSettings(AdapterSettings):
    """A reward model's settings: the adapter (or every weight) and the loop's learning rate and batch size."""

    learning_rate: float = 1e-4
    batch_size: int = 4


def _build():
    from llmctl_plugins.methods.reward._method import RewardMethod

    return RewardMethod()


@hookimpl
def register_methods(register):
    """Register reward."""
    register(Method("reward", "Reward model: one-output head, pairwise Bradley–Terry loss (score with "
                              "`llmctl score`, average with `llmctl merge`)", kind="reward",
                    settings=RewardSettings, build=_build))
