"""PPO on the shared loop: each rollout (sample, score, GAE) feeds ``ppo_epochs`` × minibatches optimizer steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmctl_plugins.methods._align_common import load_prompts, require_reward, wrap_for_training

from llmctl.train.method import LossOutput, MethodContext, TrainingMethod

PPO_KEYS = ("max_new_tokens", "temperature", "top_k", "kl_coef", "kl_estimator", "gamma", "lam", "clip_range",
            "value_clip_range", "value_coef", "ppo_epochs", "minibatch_size", "whiten_advantages", "ema_decay")


class PpoMethod(TrainingMethod):
    """Policy with an adapter (reference = adapter off) and a value head on its hidden states."""

    name = "ppo"
    output = "adapter"

    def __init__(self) -> None:
        self.reference: Any = None
        self.queue: list[dict[str, Any]] = []
        self.rollout_metrics: dict[str, float] = {}
        self.rollouts = 0
        self.ema: Any = None

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Wrap the policy, attach a zero-initialised value head, resolve the reward."""
        from llmctl.align.ppo_math import ParameterEMA
        from llmctl.align.ppo_rollout import PPOSettings, value_head
        from llmctl.align.rewards import resolve_reward

        self.ppo = PPOSettings(**{k: settings[k] for k in PPO_KEYS})
        self.score = resolve_reward(require_reward(settings), context.extra.get("trust_remote_code", False))
        self.tokenizer = context.tokenizer
        model, self.reference = wrap_for_training(model, settings, context)
        self.output = "model" if self.reference is not None else "adapter"
        model.add_module("value_head", value_head(model.config.hidden_size).to(context.device))
        if self.ppo.ema_decay:
            self.ema = ParameterEMA(model, self.ppo.ema_decay)
        return model

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """The prompts to roll out (no validation split: progress is the mean reward)."""
        from llmctl.data.dataset import SftData

        prompts = load_prompts(settings, context)
        return SftData(prompts, [], "prompts", len(prompts))

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """The prompts of one rollout."""
        return {"_prompts": [p for p, _ in items], "_prompt_ids": [ids for _, ids in items], "_tokens": 0}

    def count(self, batch: dict[str, Any]) -> int:
        """Each micro-batch is one PPO minibatch with a mean loss."""
        return 1

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """The PPO loss of the next minibatch; a new rollout from this batch's prompts when the last one is used up."""
        from llmctl.align.ppo_rollout import make_rollout, minibatches, ppo_batch_loss
        from llmctl.train.distributed import unwrap

        policy = unwrap(model)
        if not self.queue:
            rollout = make_rollout(policy, policy.value_head, self.tokenizer, batch["_prompts"], batch["_prompt_ids"],
                                   self.score, self.ppo, self.reference)
            device = next(policy.parameters()).device
            self.queue = [{k: v.to(device) if hasattr(v, "to") else v for k, v in mb.items()}
                          for mb in minibatches(rollout, self.ppo, seed=settings["seed"] + self.rollouts)]
            self.rollout_metrics = rollout["metrics"]
            self.rollouts += 1
        minibatch = self.queue.pop(0)
        batch["_tokens"] = int(minibatch["attention_mask"].sum())  # what this step trained on, for tokens/s
        loss, metrics = ppo_batch_loss(model, policy.value_head, minibatch, self.ppo)
        return LossOutput(loss, 1, {**metrics, **self.rollout_metrics})

    def after_step(self, model: Any, step: int) -> None:
        """Update the moving average of the policy weights (when ``ema_decay`` > 0)."""
        if self.ema is not None:
            self.ema.update(model)

    def save(self, model: Any, tokenizer: Any, directory: Path) -> None:
        """The policy (moving average when enabled) as adapter or model, and the value head beside it."""
        from safetensors.torch import save_file

        if self.ema is not None:
            self.ema.copy_to(model)
        head = model._modules.pop("value_head")
        save_file({k: v.detach().contiguous() for k, v in head.state_dict().items()},
                  str(directory / "value_head.safetensors"))
        model.save_pretrained(directory)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
        model.add_module("value_head", head)
