"""Reward-model training on the shared loop: a one-output classification head, pairwise Bradley–Terry loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmctl.models.tokens import pad_token_id
from llmctl.train.adapters import adapter_output, wrap_for_training
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod
from llmctl.train.prompts import load_preference_data


class RewardMethod(TrainingMethod):
    """Learns r(prompt, answer) so that σ(r(chosen) − r(rejected)) matches the preferences."""

    name = "reward"

    def load_model(self, settings: Any, context: MethodContext) -> Any:
        """The family's model with a new one-output sequence-classification head."""
        from llmctl.reward.model import load_reward_model

        model = load_reward_model(context.model_dir, pad_token_id=pad_token_id(context.tokenizer),
                                  dtype=settings["dtype"], trust_remote_code=context.trust_remote_code)
        return model.to(context.device)

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """An adapter plus a trainable head (peft's sequence-classification task), or every weight."""
        model, _ = wrap_for_training(model, settings, context, task_type="SEQ_CLS")
        return model

    def output_kind(self, settings: Any) -> str:
        """An adapter with the head, or the whole reward model with ``adapter=none``."""
        return adapter_output(settings)

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """Preference pairs, as for DPO."""
        return load_preference_data(settings, context)

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """``[chosen…, rejected…]`` rows (prompt + answer)."""
        from llmctl.data.preference import collate_pairs

        batch = collate_pairs(items, pad_token_id(context.tokenizer))
        batch.pop("completion_mask")
        return batch

    def count(self, batch: dict[str, Any]) -> int:
        """Loss units are pairs."""
        return batch["input_ids"].shape[0] // 2

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """Summed Bradley–Terry loss, with mean rewards, margin and pairwise accuracy."""
        from llmctl_plugins.methods.reward._loss import reward_batch_loss

        loss, metrics = reward_batch_loss(model, batch)
        pairs = self.count(batch)
        return LossOutput(loss * pairs, pairs, metrics, tokens=int(batch["attention_mask"].sum()))

    def save(self, model: Any, tokenizer: Any, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        """The adapter (with the head) or the whole reward model, always with the tokenizer (``llmctl score``)."""
        model.save_pretrained(directory, state_dict=state_dict)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
