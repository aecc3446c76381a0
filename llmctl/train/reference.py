"""The reference policy of preference and RL methods: the model with its adapter switched off, or a frozen copy.

With a peft adapter no second copy of the weights sits in memory: the reference is the same model with the adapter
disabled for one forward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def is_peft_model(model: Any) -> bool:
    """True for a peft ``PeftModel`` (which can switch its adapters off)."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@contextlib.contextmanager
def reference_of(model: Any, reference_model: Any = None) -> Iterator[Any]:
    """The model to score the reference with: ``reference_model`` if given, else the policy with adapters disabled."""
    if reference_model is not None:
        yield reference_model
        return
    if not is_peft_model(model):
        raise ValueError("without an adapter the reference must be a frozen model copy")
    with model.disable_adapter():
        yield model


class AdapterOff:
    """A callable model: the peft model ``model`` run with its adapters disabled (the reference policy)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, **inputs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(**inputs)


class ReferencePolicyMethod:
    """Mixin for methods that train a policy against a reference (DPO, KTO, LiPO, GRPO, PPO).

    ``prepare`` wraps the model as the ``adapter`` setting asks (:func:`llmctl.train.adapters.wrap_for_training`)
    and keeps the frozen copy when every weight trains; :meth:`reference_model` is what to score the reference with;
    ``output_kind`` follows the ``adapter`` setting. Put it before :class:`llmctl.train.method.TrainingMethod`.
    """

    reference: Any = None

    def prepare(self, model: Any, settings: Any, context: Any) -> Any:
        """An adapter on the policy (reference = adapter off), or full weights with a frozen reference copy."""
        from llmctl.train.adapters import wrap_for_training

        model, self.reference = wrap_for_training(model, settings, context)
        return model

    def output_kind(self, settings: Any) -> str:
        """An adapter, or the whole policy with ``adapter=none``."""
        from llmctl.train.adapters import adapter_output

        return adapter_output(settings)

    def reference_model(self, model: Any) -> Any:
        """The frozen copy, or the (unwrapped) peft policy called with its adapter switched off."""
        from llmctl.train.distributed import unwrap

        return self.reference if self.reference is not None else AdapterOff(unwrap(model))
