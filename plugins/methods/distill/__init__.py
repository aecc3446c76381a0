"""Logit distillation from a teacher model: KL/JSD when the tokenizers match, Universal Logit Distillation when not."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmctl.config import Range
from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.settings_schema import setting
from llmctl.train.adapters import ADAPTERS, AdapterSettings

LOSSES = ("auto", "forward_kl", "reverse_kl", "jsd", "uld")


@dataclass
class DistillSettings(AdapterSettings):
    """Distillation's settings: the teacher, the divergence and its mix with the ordinary cross-entropy."""

    learning_rate: float = 2e-4
    adapter: str = setting("lora", "the student's adapter: lora, dora or none (none trains every weight)",
                           choices=ADAPTERS)
    teacher: str = setting("", "the teacher: a registry name, store artefact or model folder (required)")
    loss: str = setting("auto", "auto (forward_kl with the student's vocabulary, else uld), forward_kl, reverse_kl, "
                        "jsd or uld (Universal Logit Distillation, any tokenizers)", choices=LOSSES)
    temperature: float = setting(1.0, "softmax temperature of both sides' logits in the distillation term",
                                 range=Range(0, low_open=True))
    alpha: float = setting(0.5, "KL family: loss = alpha × cross-entropy + (1 − alpha) × divergence",
                           range=Range(0, 1))
    jsd_beta: float = setting(0.5, "jsd: mixture weight of the teacher, M = (1 − β) student + β teacher "
                              "(0: forward KL, 1: reverse KL)", range=Range(0, 1))
    uld_weight: float = setting(1.0, "uld: loss = cross-entropy + uld_weight × ULD distance", range=Range(0))


def _validate(values: Mapping[str, Any]) -> str | None:
    """A teacher must be named and findable (did-you-mean on a typo), before any model loads."""
    from llmctl_plugins.methods.distill._teacher import teacher_problem

    return teacher_problem(str(values["teacher"]))


def _build():
    from llmctl_plugins.methods.distill._method import DistillMethod

    return DistillMethod()


@hookimpl
def register_methods(register):
    """Register distill."""
    register(Method("distill", "Logit distillation from teacher=MODEL: forward/reverse KL or JSD on a shared "
                    "vocabulary, Universal Logit Distillation across tokenizers", settings=DistillSettings,
                    build=_build, validate=_validate))
