"""GRPO's maths: group-relative advantages, the clipped surrogate with the k3 KL, and the three normalisations.

Per answer ``i`` with advantage ``A_i`` and per completion token ``t`` with log-probabilities ``ℓ`` (the policy
being trained), ``ℓ_old`` (the policy that sampled the rollout) and ``ℓ_ref`` (the reference)::

    ρ = exp(ℓ − ℓ_old)
    loss_it = −min(ρ A_i, clip(ρ, 1 − ε, 1 + ε_high) A_i) + β ρ (exp(ℓ_ref − ℓ) − (ℓ_ref − ℓ) − 1)

(the ρ on the KL term only with ``unbiased_kl``: its gradient makes the KL gradient unbiased, DeepSeek-V3.2)

and, with ``m`` the completion mask, ``N`` answers and ``L`` the longest allowed answer:

    grpo     Σ_i (Σ_t loss·m / Σ_t m) / N
    dr_grpo  Σ_i Σ_t loss·m / (N · L)
    dapo     Σ_i Σ_t loss·m / Σ_i Σ_t m

These are trl's GRPOTrainer normalisations (``tests/test_grpo.py`` checks loss and gradients against its code). Here
each is a sum over the batch's units (answers for grpo and dr_grpo, tokens for dapo): the training loop divides by
the units of the whole optimizer step, across micro-batches and processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STD_EPS = 1e-4
"""Added to the group's standard deviation before dividing (trl's constant)."""


def group_advantages(rewards: Any, group_size: int, mode: str) -> tuple[Any, Any]:
    """Each answer's advantage from the rewards of its group (groups are consecutive rows), and each group's std.

    ``group``: (r − mean) / (std + 1e-4), std with Bessel's correction as trl; ``rloo``: r minus the mean of the
    other answers of its group (= G/(G−1) · (r − mean)); ``none-std``: r − mean (Dr. GRPO).
    """
    grouped = rewards.float().view(-1, group_size)
    mean = grouped.mean(1, keepdim=True)
    std = grouped.std(1, keepdim=True)
    if mode == "group":
        advantages = (grouped - mean) / (std + STD_EPS)
    elif mode == "rloo":
        advantages = grouped - (grouped.sum(1, keepdim=True) - grouped) / (group_size - 1)
    elif mode == "none-std":
        advantages = grouped - mean
    else:
        raise ValueError(f"unknown advantage {mode!r}")
    return advantages.reshape(-1), std.squeeze(1)


@dataclass
class TokenTerms:
    """Per-token terms of a batch, ``[answers, completion tokens]``, before masking."""

    loss: Any
    kl: Any
    """k3 KL to the reference (None when β = 0)."""
    clipped: Any
    """Where the clip took the gradient away: ratio below 1 − ε with A < 0, or above 1 + ε_high with A > 0."""


def token_terms(logps: Any, old_logps: Any, advantages: Any, *, epsilon: float, epsilon_high: float,
                beta: float = 0.0, ref_logps: Any = None, unbiased_kl: bool = True) -> TokenTerms:
    """The clipped surrogate plus β × k3 KL at every completion token.

    ``unbiased_kl`` weighs the KL term by the ratio ρ (value 1 on the rollout's first use, but its gradient adds the
    score-function term): the unbiased gradient of the reverse KL (DeepSeek-V3.2; trl's default).
    """
    import torch

    ratio = torch.exp(logps - old_logps)
    advantage = advantages.unsqueeze(1)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon, 1 + epsilon_high)
    loss = -torch.min(ratio * advantage, clipped_ratio * advantage)
    kl = None
    if beta:
        delta = ref_logps - logps
        kl = torch.exp(delta) - delta - 1
        loss = loss + beta * (kl * ratio if unbiased_kl else kl)
    clipped = ((ratio < 1 - epsilon) & (advantage < 0)) | ((ratio > 1 + epsilon_high) & (advantage > 0))
    return TokenTerms(loss, kl, clipped)


def summed_loss(per_token: Any, mask: Any, loss_type: str, max_completion_length: int) -> Any:
    """The batch's loss summed over its units (answers for grpo and dr_grpo, completion tokens for dapo)."""
    masked = per_token * mask
    if loss_type == "grpo":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).sum()
    if loss_type == "dr_grpo":
        return masked.sum() / max_completion_length
    if loss_type == "dapo":
        return masked.sum()
    raise ValueError(f"unknown loss_type {loss_type!r}")


def loss_units(mask: Any, loss_type: str) -> int:
    """What the loss of ``loss_type`` is a mean over: answers (grpo, dr_grpo) or completion tokens (dapo)."""
    return int(mask.sum()) if loss_type == "dapo" else int(mask.shape[0])


def masked_mean(values: Any, mask: Any) -> float:
    """Mean of ``values`` over the positions where ``mask`` is 1 (0.0 for an empty mask)."""
    count = float(mask.sum())
    return float((values.float() * mask).sum()) / count if count else 0.0
