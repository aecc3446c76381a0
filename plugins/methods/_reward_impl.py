"""Reward-model training on the shared loop: a one-output classification head, pairwise Bradley–Terry loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmctl_plugins.methods._align_common import load_preference_data, pad_id, wrap_for_training

from llmctl.train.method import LossOutput, MethodContext, TrainingMethod


class RewardMethod(TrainingMethod):
    """Learns r(prompt, answer) so that σ(r(chosen) − r(rejected)) matches the preferences."""

    name = "reward"
    output = "adapter"

    def load_model(self, settings: Any, context: MethodContext) -> Any:
        """The family's model with a new one-output sequence-classification head."""
        from llmctl.align.reward import load_reward_model

        model = load_reward_model(context.model_dir, pad_token_id=pad_id(context.tokenizer), dtype=settings["dtype"],
                                  trust_remote_code=context.extra.get("trust_remote_code", False))
        return model.to(context.device)

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """An adapter plus a trainable head (peft's sequence-classification task), or every weight."""
        model, reference = wrap_for_training(model, settings, context, task_type="SEQ_CLS")
        self.output = "model" if reference is not None else "adapter"
        return model

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """Preference pairs, as for DPO."""
        return load_preference_data(settings, context)

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """``[chosen…, rejected…]`` rows (prompt + answer)."""
        from llmctl.data.preference import collate_pairs

        batch = collate_pairs(items, pad_id(context.tokenizer))
        batch.pop("completion_mask")
        batch["_tokens"] = int(batch["attention_mask"].sum())
        return batch

    def count(self, batch: dict[str, Any]) -> int:
        """Loss units are pairs."""
        return batch["input_ids"].shape[0] // 2

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """Summed Bradley–Terry loss, with mean rewards, margin and pairwise accuracy."""
        from llmctl.align.reward import reward_batch_loss

        loss, metrics = reward_batch_loss(model, batch)
        pairs = self.count(batch)
        return LossOutput(loss * pairs, pairs, metrics)

    def save(self, model: Any, tokenizer: Any, directory: Path) -> None:
        """The adapter (with the head) or the whole reward model, always with the tokenizer (``llmctl score``)."""
        model.save_pretrained(directory)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
