"""Rejection sampling (best-of-N): N answers per prompt scored by a reward, the best kept as a new SFT data set."""

from llmctl_plugins.methods._align_common import ADAPTER_HELP, ADAPTER_RANGES, SAMPLING_RANGES

from llmctl.descriptors import Method, Range
from llmctl.hookspecs import hookimpl

REJECTION_DEFAULTS = {
    "reward": "", "num_samples": 4, "max_new_tokens": 64, "temperature": 1.0, "top_k": 0, "finetune": False,
    "batch_size": 4, "val_split": 0.0, "learning_rate": 2e-4, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
    "target_modules": "",
}
REJECTION_RANGES = {**ADAPTER_RANGES, **SAMPLING_RANGES, "num_samples": Range(1)}
REJECTION_HELP = {
    **{k: v for k, v in ADAPTER_HELP.items() if k != "adapter"},
    "reward": "MODULE:FUNCTION(prompts, completions) -> floats, or a reward-model artefact / folder",
    "num_samples": "answers sampled per prompt (N)",
    "max_new_tokens": "longest sampled answer",
    "temperature": "sampling temperature",
    "top_k": "sample among the k likeliest tokens (0: all)",
    "finetune": "also fine-tune a LoRA adapter on the best answers in the same run (max_steps steps)",
    "batch_size": "prompts sampled together (and SFT micro-batch size)",
}


def _build():
    from llmctl_plugins.methods._rejection_impl import RejectionSamplingMethod

    return RejectionSamplingMethod()


@hookimpl
def register_methods(register):
    """Register rejection-sampling."""
    register(Method("rejection-sampling", "Best-of-N by reward → candidates.jsonl + best.jsonl (an SFT data set) in "
                                          "the run; finetune=true also trains on it", kind="data",
                    defaults=REJECTION_DEFAULTS, build=_build, settings_help=REJECTION_HELP,
                    ranges=REJECTION_RANGES))
