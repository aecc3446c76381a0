"""Rejection sampling (best-of-N): N answers per prompt scored by a reward, the best kept as a new SFT data set."""

from dataclasses import dataclass

from llmctl.config import Range
from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.reward.functions import REWARD_HELP, WEIGHTS_HELP
from llmctl.settings_schema import setting
from llmctl.train.adapters import LoraSettings
from llmctl.train.sampling import SamplingSettings


@dataclass
class RejectionSamplingSettings(LoraSettings, SamplingSettings):
    """Best-of-N's settings; the LoRA ones shape the adapter of the optional fine-tuning."""

    reward: str = setting("", REWARD_HELP)
    reward_weights: str = setting("", WEIGHTS_HELP)
    num_samples: int = setting(4, "answers sampled per prompt (N)", range=Range(1))
    max_new_tokens: int = setting(64, "longest sampled answer", range=Range(1))
    finetune: bool = setting(False, "also fine-tune a LoRA adapter on the best answers in the same run "
                                    "(max_steps steps)")
    batch_size: int = setting(4, "prompts sampled together (and SFT micro-batch size)")
    val_split: float = 0.0
    learning_rate: float = 2e-4
    lora_dropout: float = setting(0.0, "dropout on the adapter input", range=Range(0, 1, high_open=True))


def _build():
    from llmctl_plugins.methods.rejection_sampling._method import RejectionSamplingMethod

    return RejectionSamplingMethod()


@hookimpl
def register_methods(register):
    """Register rejection-sampling."""
    register(Method("rejection-sampling", "Best-of-N by reward → candidates.jsonl + best.jsonl (an SFT data set) in "
                                          "the run; finetune=true also trains on it", kind="data",
                    settings=RejectionSamplingSettings, build=_build))
