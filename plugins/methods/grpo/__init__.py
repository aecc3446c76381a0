"""GRPO (DeepSeekMath) and its variants: G sampled answers per prompt, group-relative advantages, no value model.

``advantage`` picks the baseline (group mean and std, RLOO's leave-one-out mean, or Dr. GRPO's unscaled mean),
``loss_type`` the token normalisation (grpo, dr_grpo, dapo, as in trl's GRPOTrainer), ``beta`` the k3 KL tie to
the reference (the adapter switched off; 0 runs no reference forward), ``epsilon``/``epsilon_high`` the ratio clip
that matters once a rollout is reused (``num_iterations`` > 1). The maths is in ``_loss.py``; docs/methods/grpo.md.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmctl.config import Range
from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.reward.functions import REWARD_HELP, WEIGHTS_HELP
from llmctl.settings_schema import setting
from llmctl.train.adapters import AdapterSettings
from llmctl.train.sampling import SamplingSettings

ADVANTAGES = ("group", "rloo", "none-std")
LOSS_TYPES = ("grpo", "dr_grpo", "dapo")


@dataclass
class GrpoSettings(AdapterSettings, SamplingSettings):
    """GRPO's settings (defaults follow trl's GRPOConfig where it has one, sized for a CPU)."""

    learning_rate: float = 1e-4
    batch_size: int = setting(4, "prompts per micro-batch (each sampled num_generations times)")
    val_split: float = 0.0
    reward: str = setting("", REWARD_HELP)
    reward_weights: str = setting("", WEIGHTS_HELP)
    num_generations: int = setting(4, "answers sampled per prompt (the group, G)", range=Range(2))
    max_new_tokens: int = setting(64, "longest sampled answer (dr_grpo divides by it)", range=Range(1))
    temperature: float = setting(1.0, "sampling temperature (log-probs are taken at the same temperature)",
                                 range=Range(0, low_open=True))
    advantage: str = setting("group", "group: (r - mean) / (std + 1e-4); rloo: r - mean of the other answers; "
                                      "none-std: r - mean (Dr. GRPO)", choices=ADVANTAGES)
    loss_type: str = setting("dapo", "grpo: mean per answer, then over answers; dr_grpo: sum / (answers × "
                                     "max_new_tokens); dapo: mean over every answer token of the step",
                             choices=LOSS_TYPES)
    beta: float = setting(0.0, "weight of the k3 KL to the reference (0: no reference forward)", range=Range(0))
    unbiased_kl: bool = setting(True, "weigh the KL by the policy ratio: the unbiased reverse-KL gradient "
                                      "(DeepSeek-V3.2; trl's default); false: plain k3 (DeepSeekMath)")
    epsilon: float = setting(0.2, "ratio clip below (and above unless epsilon_high)", range=Range(0, low_open=True))
    epsilon_high: float = setting(0.0, "ratio clip above (DAPO's clip-higher, e.g. 0.28; 0: epsilon)",
                                  range=Range(0))
    shared_prompt: bool = setting(True, "run each prompt once for its G answers (one key/value cache) when sampling "
                                        "and scoring; false: every answer's whole sequence, as trl does")
    num_iterations: int = setting(1, "optimizer steps per rollout (>1 reuses it, with ratio clipping)",
                                  range=Range(1))


def _validate(values: Mapping[str, Any]) -> str | None:
    """No validation split (progress is the reward); an upper clip narrower than the lower one is a typo."""
    if values["val_split"] or values["val_data"]:
        return "grpo has no validation loss (its progress is the reward in metrics.jsonl); drop val_split/val_data"
    if values["epsilon_high"] and values["epsilon_high"] < values["epsilon"]:
        return "epsilon_high must be at least epsilon (it widens the upper clip); 0 means the same as epsilon"
    return None


def _build():
    from llmctl_plugins.methods.grpo._method import GrpoMethod

    return GrpoMethod()


@hookimpl
def register_methods(register):
    """Register grpo."""
    register(Method("grpo", "GRPO / Dr. GRPO / DAPO / RLOO: G answers per prompt scored by reward functions, "
                            "group-relative advantages, optional KL to the reference", kind="rl",
                    settings=GrpoSettings, build=_build, validate=_validate))
