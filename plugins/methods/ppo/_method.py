"""PPO on the shared loop: each rollout (sample, score, GAE) feeds ``ppo_epochs`` × minibatches optimizer steps."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from llmctl.train.adapters import adapter_output, wrap_for_training
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod


class PpoMethod(TrainingMethod):
    """Policy with an adapter (reference = adapter off) and a value head on its hidden states."""

    name = "ppo"

    def __init__(self) -> None:
        self.reference: Any = None
        self.queue: list[dict[str, Any]] = []
        self.rollout_metrics: dict[str, float] = {}
        self.rollouts = 0
        self.ema: Any = None
        self.steps_done: int | None = None  # optimizer steps before this one, for the step a reward error names

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Wrap the policy, attach a zero-initialised value head, resolve the reward."""
        from llmctl.reward.functions import require_reward, resolve_reward
        from llmctl.settings_schema import settings_from
        from llmctl_plugins.methods.ppo import PpoSettings
        from llmctl_plugins.methods.ppo._math import ParameterEMA
        from llmctl_plugins.methods.ppo._rollout import value_head

        self.ppo = settings_from(PpoSettings, settings)
        self.score = resolve_reward(require_reward(settings), context.trust_remote_code, settings["reward_weights"])
        self.context = context
        self.tokenizer = context.tokenizer
        model, self.reference = wrap_for_training(model, settings, context)
        model.add_module("value_head", value_head(model.config.hidden_size).to(context.device))
        if self.ppo.ema_decay:
            self.ema = ParameterEMA(model, self.ppo.ema_decay)
        return model

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """The prompts to roll out (no validation split: progress is the mean reward)."""
        from llmctl.data.dataset import SftData
        from llmctl.train.prompts import load_prompts

        prompts = load_prompts(settings, context)
        return SftData(prompts, [], "prompts", len(prompts))

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """The prompts of one rollout."""
        return {"_prompts": [p for p, _ in items], "_prompt_ids": [ids for _, ids in items]}

    def count(self, batch: dict[str, Any]) -> int:
        """Each micro-batch is one PPO minibatch with a mean loss."""
        return 1

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """The PPO loss of the next minibatch; a new rollout from this batch's prompts when the last one is used up."""
        from llmctl.train.distributed import unwrap
        from llmctl_plugins.methods.ppo._rollout import make_rollout, minibatches, ppo_batch_loss

        policy = unwrap(model)
        if not self.queue:
            if self.steps_done is None:  # a resumed run goes on after its last checkpoint
                from llmctl.train.checkpoint import checkpoint_step, list_checkpoints

                found = list_checkpoints(self.context.run_dir) if self.context.run_dir else []
                self.steps_done = checkpoint_step(found[-1]) if found else 0
            score = functools.partial(self.score, step=self.steps_done + 1)
            rollout = make_rollout(policy, policy.value_head, self.tokenizer, batch["_prompts"], batch["_prompt_ids"],
                                   score, self.ppo, self.reference)
            device = next(policy.parameters()).device
            self.queue = [{k: v.to(device) if hasattr(v, "to") else v for k, v in mb.items()}
                          for mb in minibatches(rollout, self.ppo, seed=settings["seed"] + self.rollouts)]
            self.rollout_metrics = rollout["metrics"]
            self.rollouts += 1
        minibatch = self.queue.pop(0)
        loss, metrics = ppo_batch_loss(model, policy.value_head, minibatch, self.ppo)
        # what this step trained on, for tokens/s
        return LossOutput(loss, 1, {**metrics, **self.rollout_metrics}, tokens=int(minibatch["attention_mask"].sum()))

    def output_kind(self, settings: Any) -> str:
        """An adapter, or the whole policy with ``adapter=none``."""
        return adapter_output(settings)

    def after_step(self, model: Any, step: int) -> None:
        """Update the moving average of the policy weights (when ``ema_decay`` > 0)."""
        self.steps_done = step
        if self.ema is not None:
            self.ema.update(model)

    def save(self, model: Any, tokenizer: Any, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        """The policy (moving average when enabled) as adapter or model, and the value head beside it.

        Under FSDP ``state_dict`` holds the gathered weights, the value head's among them (``value_head.*``).
        """
        from safetensors.torch import save_file

        if self.ema is not None:
            self.ema.copy_to(model)
        head = model._modules.pop("value_head")
        prefix = "value_head."
        if state_dict is not None:
            head_state = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
        else:
            head_state = head.state_dict()
        save_file({k: v.detach().contiguous() for k, v in head_state.items()},
                  str(directory / "value_head.safetensors"))
        model.save_pretrained(directory, state_dict=state_dict)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
        model.add_module("value_head", head)
