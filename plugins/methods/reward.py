"""Reward models: a sequence-classification head on the family's model, trained on preference pairs."""

from llmctl_plugins.methods._align_common import ADAPTER_CHOICES, ADAPTER_DEFAULTS, ADAPTER_HELP, ADAPTER_RANGES

from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl

REWARD_DEFAULTS = {**ADAPTER_DEFAULTS, "learning_rate": 1e-4, "batch_size": 4}


def _build():
    from llmctl_plugins.methods._reward_impl import RewardMethod

    return RewardMethod()


@hookimpl
def register_methods(register):
    """Register reward."""
    register(Method("reward", "Reward model: one-output head, pairwise Bradley–Terry loss (score with "
                              "`llmctl score`, average with `llmctl merge`)", kind="reward",
                    defaults=REWARD_DEFAULTS, build=_build, settings_help=ADAPTER_HELP,
                    choices=ADAPTER_CHOICES, ranges=ADAPTER_RANGES))
