"""Direct preference optimisation: the sigmoid DPO loss (with conservative label smoothing) and IPO.

The reference model is the policy with its adapter switched off when the policy is a peft model, so no second copy
of the weights sits in memory; for full fine-tuning a frozen reference copy is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.train.logprobs import completion_logprobs
from llmctl.train.reference import reference_of

LOSS_TYPES = ("sigmoid", "ipo")


@dataclass
class PreferenceLoss:
    """A DPO loss and the statistics worth logging with it (rewards are ``beta`` × log-ratio to the reference)."""

    loss: Any
    chosen_rewards: Any
    rejected_rewards: Any

    def metrics(self) -> dict[str, float]:
        """Mean chosen/rejected reward, margin and preference accuracy of the batch."""
        margins = (self.chosen_rewards - self.rejected_rewards).detach()
        return {
            "loss": float(self.loss.detach()),
            "rewards/chosen": float(self.chosen_rewards.mean()),
            "rewards/rejected": float(self.rejected_rewards.mean()),
            "rewards/margin": float(margins.mean()),
            "rewards/accuracy": float((margins > 0).float().mean()),
        }


def dpo_loss(policy_chosen: Any, policy_rejected: Any, reference_chosen: Any, reference_rejected: Any,
             beta: float = 0.1, label_smoothing: float = 0.0, loss_type: str = "sigmoid",
             chosen_lengths: Any = None, rejected_lengths: Any = None) -> PreferenceLoss:
    """The DPO loss of a batch from summed completion log-probabilities of policy and reference.

    ``sigmoid``: −(1−ε)·log σ(β·Δ) − ε·log σ(−β·Δ), Δ the policy-minus-reference log-ratio margin (ε = label
    smoothing, the conservative DPO of Mitchell 2023). ``ipo``: (Δ/length − 1/(2β))², log-ratios averaged per
    completion token as trl does (lengths required).
    """
    import torch.nn.functional as F

    chosen_ratio = policy_chosen - reference_chosen
    rejected_ratio = policy_rejected - reference_rejected
    if loss_type == "sigmoid":
        logits = beta * (chosen_ratio - rejected_ratio)
        losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    elif loss_type == "ipo":
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError("the IPO loss needs the completion lengths")
        delta = chosen_ratio / chosen_lengths.clamp(min=1) - rejected_ratio / rejected_lengths.clamp(min=1)
        losses = (delta - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss type {loss_type!r} (expected one of {', '.join(LOSS_TYPES)})")
    return PreferenceLoss(losses.mean(), beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


def preference_batch_loss(model: Any, batch: dict[str, Any], beta: float = 0.1, label_smoothing: float = 0.0,
                          loss_type: str = "sigmoid", reference_model: Any = None) -> PreferenceLoss:
    """Forward a ``[chosen…, rejected…]`` batch through policy and reference and return the DPO loss.

    Precomputed reference log-probabilities in ``batch["reference_logps"]`` skip the reference forward.
    """
    import torch

    inputs = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    reference_logps = batch.get("reference_logps")
    if reference_logps is None:  # first, so its logits are freed before the policy's activations exist
        with torch.no_grad(), reference_of(model, reference_model) as reference:
            reference_logps, _ = completion_logprobs(reference, *inputs)
    policy_logps, lengths = completion_logprobs(model, *inputs)
    policy_chosen, policy_rejected = policy_logps.chunk(2)
    reference_chosen, reference_rejected = reference_logps.detach().chunk(2)
    chosen_lengths, rejected_lengths = lengths.chunk(2)
    return dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta, label_smoothing,
                    loss_type, chosen_lengths, rejected_lengths)


def preference_accuracy(model: Any, batch: dict[str, Any], reference_model: Any = None) -> float:
    """Share of pairs whose chosen answer gains more log-probability over the reference than the rejected one."""
    import torch

    with torch.no_grad():
        result = preference_batch_loss(model, batch, reference_model=reference_model)
    return result.metrics()["rewards/accuracy"]
