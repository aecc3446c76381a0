"""PPO (our own; trl no longer ships one): reward from a reward model or a Python function, KL to the reference."""

from dataclasses import dataclass

from llmctl.config import Range
from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.reward.functions import REWARD_HELP, WEIGHTS_HELP
from llmctl.settings_schema import setting
from llmctl.train.adapters import AdapterSettings
from llmctl.train.sampling import SamplingSettings


@dataclass
class PpoSettings(AdapterSettings, SamplingSettings):
    """PPO's settings (defaults follow common RLHF practice for small models)."""

    learning_rate: float = 1e-4
    batch_size: int = setting(16, "prompts sampled per rollout")
    val_split: float = 0.0
    reward: str = setting("", REWARD_HELP)
    reward_weights: str = setting("", WEIGHTS_HELP)
    temperature: float = setting(1.0, "sampling temperature of rollouts", range=Range(0, low_open=True))
    kl_coef: float = setting(0.05, "per-token KL penalty to the reference (β)", range=Range(0))
    kl_estimator: str = setting("k1", "k1 (log-ratio) or k3", choices=("k1", "k3"))
    gamma: float = setting(1.0, "discount", range=Range(0, 1))
    lam: float = setting(0.95, "GAE λ", range=Range(0, 1))
    clip_range: float = setting(0.2, "policy ratio clip ε", range=Range(0, low_open=True))
    value_clip_range: float = setting(0.2, "value clip", range=Range(0, low_open=True))
    value_coef: float = setting(0.1, "value-loss weight", range=Range(0))
    ppo_epochs: int = setting(2, "passes over each rollout", range=Range(1))
    minibatch_size: int = setting(8, "rows per optimizer step (one micro-batch)", range=Range(1))
    whiten_advantages: bool = setting(True, "normalise advantages per rollout")
    ema_decay: float = setting(0.0, "moving average of the policy weights, saved as the result (0: off; e.g. 0.99)",
                               range=Range(0, 1, high_open=True))


def _build():
    from llmctl_plugins.methods.ppo._method import PpoMethod

    return PpoMethod()


@hookimpl
def register_methods(register):
    """Register ppo."""
    register(Method("ppo", "PPO: rollouts scored by a reward model or function, GAE, clipped losses, KL to the "
                           "reference, optional weight EMA", kind="rl", settings=PpoSettings, build=_build))
