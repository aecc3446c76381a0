"""GRPO on the shared loop: the rollout is the batch, so the loop's normalisation is trl's.

``collate`` samples the answers of its prompts with the current policy and scores them; ``count`` then knows the
batch's units (answers, or answer tokens for dapo), and the loop divides the summed losses by the units of the whole
optimizer step across micro-batches and processes, as trl does. With ``num_iterations`` > 1 each rollout trains
that many optimizer steps; it is kept (with the log-probabilities of the policy that sampled it, and the
reference's) in :meth:`GrpoMethod.state`, so a checkpoint taken between two uses resumes exactly.
"""

from __future__ import annotations

from typing import Any

from llmctl.train.adapters import adapter_output, wrap_for_training
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod


class GrpoMethod(TrainingMethod):
    """Critic-free RL: group-relative advantages over G answers per prompt, KL to the adapter-off reference."""

    name = "grpo"

    def __init__(self) -> None:
        self.grpo: Any = None
        self.rewards: Any = None
        self.policy: Any = None
        self.reference: Any = None
        self.tokenizer: Any = None
        self.step = 0
        """Optimizer steps completed (the loop's step numbers count from 1: the next step is ``step + 1``)."""
        self.micro = 0
        """Micro-batches collated so far in the current step."""
        self.rollouts: list[dict[str, Any]] = []
        """This step's rollouts, one per micro-batch, kept for reuse when ``num_iterations`` > 1."""

    def check_data(self, settings: Any, context: MethodContext) -> int:
        """Every record has a prompt (``--dry-run``; the rewards' columns are checked when a run starts)."""
        from llmctl.data.records import read_records
        from llmctl.train.prompts import prompt_of

        records = read_records(context.data_path)
        for record in records:
            prompt_of(record.values, record.where)
        return len(records)

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """The prompts with their other columns; a record lacking a column a reward reads is refused ``file:line``
        before any model loads."""
        from llmctl.data.dataset import SftData
        from llmctl.reward.functions import require_reward, resolve_rewards
        from llmctl.settings_schema import settings_from
        from llmctl.train.prompts import load_prompt_records
        from llmctl_plugins.methods.grpo import GrpoSettings

        self.grpo = settings_from(GrpoSettings, settings)
        self.rewards = resolve_rewards(require_reward(settings), settings["reward_weights"], context.trust_remote_code)
        self.rewards.check_data(context.data_path)
        records = load_prompt_records(settings, context)
        return SftData(records, [], "prompts", len(records))

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """Wrap the policy in its adapter (the reference is the adapter switched off) or keep a frozen copy."""
        model, self.reference = wrap_for_training(model, settings, context)
        self.policy, self.tokenizer = model, context.tokenizer
        return model

    def collate(self, items: list[Any], context: MethodContext) -> dict[str, Any]:
        """The rollout of these prompts: sampled now, or the kept one while ``num_iterations`` reuses it."""
        from llmctl.train.loop import autocast_context
        from llmctl_plugins.methods.grpo._rollout import make_rollout

        index, self.micro = self.micro, self.micro + 1
        reuse = self.grpo.num_iterations > 1 and self.step % self.grpo.num_iterations != 0
        if reuse and index < len(self.rollouts):
            return {**self.rollouts[index], "_rollout": index}
        with autocast_context(context.precision, context.device):  # sampled in the precision the loss trains in
            batch = make_rollout(self.policy, self.tokenizer, items, self.rewards, self.grpo, step=self.step + 1)
        if self.grpo.num_iterations > 1:
            del self.rollouts[index:]
            self.rollouts.append(batch)
        return {**batch, "_rollout": index}

    def count(self, batch: dict[str, Any]) -> int:
        """Answers (grpo, dr_grpo) or answer tokens (dapo): what the step's loss is a mean over."""
        from llmctl_plugins.methods.grpo._loss import loss_units

        return loss_units(batch["completion_mask"], self.grpo.loss_type)

    def loss(self, model: Any, batch: dict[str, Any], settings: Any) -> LossOutput:
        """The clipped surrogate (plus β × k3 KL) of the batch's answers, summed over its units."""
        import torch

        from llmctl.train.distributed import unwrap
        from llmctl.train.method import accepts_logits_to_keep
        from llmctl.train.reference import reference_of
        from llmctl_plugins.methods.grpo._loss import masked_mean, summed_loss, token_terms
        from llmctl_plugins.methods.grpo._rollout import answer_logprobs

        grpo = self.grpo
        mask = batch["completion_mask"]
        # each prompt once for its G answers, unless a DDP wrapper needs its single forward per backward
        shared = (grpo.shared_prompt and model is unwrap(model) and not _distributed()
                  and accepts_logits_to_keep(model))
        group, temperature = grpo.num_generations, grpo.temperature
        logps = answer_logprobs(model, batch, group, temperature, shared)
        kept = self.rollouts[batch["_rollout"]] if grpo.num_iterations > 1 else {}
        old = batch.get("old_logps")
        if old is None:  # the rollout's first use: the policy that sampled it is this one
            old = kept["old_logps"] = logps.detach()
        ref = batch.get("ref_logps")
        if grpo.beta and ref is None:
            with torch.no_grad(), reference_of(unwrap(model), self.reference) as reference:
                ref = kept["ref_logps"] = answer_logprobs(reference, batch, group, temperature,
                                                          grpo.shared_prompt and accepts_logits_to_keep(reference))
        terms = token_terms(logps, old, batch["advantages"], epsilon=grpo.epsilon,
                            epsilon_high=grpo.epsilon_high or grpo.epsilon, beta=grpo.beta, ref_logps=ref,
                            unbiased_kl=grpo.unbiased_kl)
        total = summed_loss(terms.loss, mask, grpo.loss_type, grpo.max_new_tokens)
        metrics = {**batch["_metrics"], "clip_fraction": masked_mean(terms.clipped, mask)}
        if terms.kl is not None:
            metrics["kl"] = masked_mean(terms.kl.detach(), mask)
        prompt_tokens = int(batch["prompt_mask"].sum()) * (1 if shared else group)
        return LossOutput(total, self.count(batch), metrics, tokens=prompt_tokens + int(mask.sum()))

    def after_step(self, model: Any, step: int) -> None:
        """Count the step: the next one reuses the kept rollouts or samples new ones."""
        self.step, self.micro = step, 0

    def state(self) -> dict[str, Any]:
        """The step count and, with ``num_iterations`` > 1, the kept rollouts (on the CPU)."""
        rollouts = [{k: v.detach().cpu() if hasattr(v, "detach") else v for k, v in r.items()} for r in self.rollouts]
        return {"step": self.step, "rollouts": rollouts if self.grpo and self.grpo.num_iterations > 1 else []}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's :meth:`state`."""
        self.step, self.micro = int(state.get("step", 0)), 0
        self.rollouts = list(state.get("rollouts") or [])

    def output_kind(self, settings: Any) -> str:
        """An adapter, or the whole policy with ``adapter=none``."""
        return adapter_output(settings)


def _distributed() -> bool:
    """Whether this process is one of several (DDP/FSDP runs keep one forward pass per backward)."""
    import torch.distributed

    return torch.distributed.is_available() and torch.distributed.is_initialized()

