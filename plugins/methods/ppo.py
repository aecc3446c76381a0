"""PPO (our own; trl no longer ships one): reward from a reward model or a Python function, KL to the reference."""

from llmctl_plugins.methods._align_common import (
    ADAPTER_CHOICES,
    ADAPTER_DEFAULTS,
    ADAPTER_HELP,
    ADAPTER_RANGES,
    SAMPLING_RANGES,
)

from llmctl.descriptors import Method, Range
from llmctl.hookspecs import hookimpl

PPO_DEFAULTS = {
    **ADAPTER_DEFAULTS, "learning_rate": 1e-4, "batch_size": 16, "val_split": 0.0, "reward": "",
    "max_new_tokens": 32, "temperature": 1.0, "top_k": 0, "kl_coef": 0.05, "kl_estimator": "k1", "gamma": 1.0,
    "lam": 0.95, "clip_range": 0.2, "value_clip_range": 0.2, "value_coef": 0.1, "ppo_epochs": 2,
    "minibatch_size": 8, "whiten_advantages": True, "ema_decay": 0.0,
}
PPO_CHOICES = {**ADAPTER_CHOICES, "kl_estimator": ("k1", "k3")}
PPO_RANGES = {
    **ADAPTER_RANGES, **SAMPLING_RANGES, "kl_coef": Range(0), "gamma": Range(0, 1), "lam": Range(0, 1),
    "clip_range": Range(0, low_open=True), "value_clip_range": Range(0, low_open=True), "value_coef": Range(0),
    "ppo_epochs": Range(1), "minibatch_size": Range(1), "ema_decay": Range(0, 1, high_open=True),
}
PPO_HELP = {
    **ADAPTER_HELP,
    "reward": "MODULE:FUNCTION(prompts, completions) -> floats, or a reward-model artefact / folder",
    "batch_size": "prompts sampled per rollout",
    "max_new_tokens": "longest sampled answer",
    "temperature": "sampling temperature of rollouts",
    "top_k": "sample among the k likeliest tokens (0: all)",
    "kl_coef": "per-token KL penalty to the reference (β)",
    "kl_estimator": "k1 (log-ratio) or k3",
    "gamma": "discount", "lam": "GAE λ",
    "clip_range": "policy ratio clip ε", "value_clip_range": "value clip", "value_coef": "value-loss weight",
    "ppo_epochs": "passes over each rollout", "minibatch_size": "rows per optimizer step (one micro-batch)",
    "whiten_advantages": "normalise advantages per rollout",
    "ema_decay": "moving average of the policy weights, saved as the result (0: off; e.g. 0.99)",
}


def _build():
    from llmctl_plugins.methods._ppo_impl import PpoMethod

    return PpoMethod()


@hookimpl
def register_methods(register):
    """Register ppo."""
    register(Method("ppo", "PPO: rollouts scored by a reward model or function, GAE, clipped losses, KL to the "
                           "reference, optional weight EMA", kind="rl", defaults=PPO_DEFAULTS, build=_build,
                    settings_help=PPO_HELP, choices=PPO_CHOICES, ranges=PPO_RANGES))
