"""The reward model's training loss: pairwise Bradley–Terry on a ``[chosen…, rejected…]`` preference batch."""

from __future__ import annotations

from typing import Any

from llmctl.reward.model import pair_scores


def bradley_terry_loss(chosen_scores: Any, rejected_scores: Any, margin: Any = None) -> Any:
    """−log σ(r_chosen − r_rejected [− margin]), averaged over the batch."""
    import torch.nn.functional as F

    difference = chosen_scores - rejected_scores
    if margin is not None:
        difference = difference - margin
    return -F.logsigmoid(difference).mean()


def reward_batch_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
    """Bradley–Terry loss of a preference batch and its logged statistics (accuracy, mean rewards, margin)."""
    chosen, rejected = pair_scores(model, batch)
    loss = bradley_terry_loss(chosen, rejected)
    margin = (chosen - rejected).detach()
    return loss, {"loss": float(loss.detach()), "rewards/chosen": float(chosen.detach().mean()),
                  "rewards/rejected": float(rejected.detach().mean()), "rewards/margin": float(margin.mean()),
                  "rewards/accuracy": float((margin > 0).float().mean())}
