"""The LiPO-λ loss (Liu et al. 2024, "LiPO: Listwise Preference Optimization through Learning-to-Rank").

For a prompt x with responses y_1 … y_K and scores ψ_1 … ψ_K (higher is better):

- each response's model score is s_i = β · (log π(y_i|x) − log π_ref(y_i|x)) (summed over its tokens);
- τ_i is the rank of response i when the list is sorted by s, best first (1 … K; ties keep list order), taken
  without gradient;
- the gain is G_i = 2^ψ_i − 1 and the rank discount D(τ) = log2(1 + τ), as in NDCG;
- the Lambda weight of a pair is Δ_ij = |G_i − G_j| · |1/D(τ_i) − 1/D(τ_j)|;
- the list's loss is Σ over pairs with ψ_i > ψ_j of Δ_ij · log(1 + exp(−(s_i − s_j))),

and a batch's loss is the mean over its lists. (The paper writes D(τ) = log(1 + τ); the base only scales every
Δ_ij by the same constant, ln 2.) With K = 2 the loss is Δ_12 times DPO's −log σ(β·margin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.train.logprobs import completion_logprobs
from llmctl.train.reference import reference_of


@dataclass
class LipoLoss:
    """Per-list LiPO-λ losses, the model scores s (detached), the data scores ψ and which entries are responses."""

    losses: Any
    model_scores: Any
    scores: Any
    mask: Any

    @property
    def loss(self) -> Any:
        """The mean loss over the lists."""
        return self.losses.mean()

    def metrics(self) -> dict[str, float]:
        """Loss; mean s of each list's best- and worst-scored response and their margin; ranking accuracy."""
        import torch

        lists = torch.arange(self.scores.shape[0], device=self.scores.device)
        best = self.scores.masked_fill(~self.mask, float("-inf")).argmax(1)
        worst = self.scores.masked_fill(~self.mask, float("inf")).argmin(1)
        s = self.model_scores
        margin = s[lists, best] - s[lists, worst]
        pairs = _ordered_pairs(self.scores, self.mask)
        right = pairs & (s.unsqueeze(2) > s.unsqueeze(1))
        return {"loss": float(self.loss.detach()), "rewards/best": float(s[lists, best].mean()),
                "rewards/worst": float(s[lists, worst].mean()), "rewards/margin": float(margin.mean()),
                "rewards/accuracy": float(right.sum() / pairs.sum().clamp(min=1))}


def _ordered_pairs(scores: Any, mask: Any) -> Any:
    """``[lists, K, K]``: True where responses i and j both exist and ψ_i > ψ_j."""
    both = mask.unsqueeze(2) & mask.unsqueeze(1)
    return both & (scores.unsqueeze(2) > scores.unsqueeze(1))


def model_ranks(model_scores: Any, mask: Any) -> Any:
    """Rank (1 = best) of each response in its list by ``model_scores``; ties keep list order, padding ranks last."""
    import torch

    ordered = model_scores.detach().masked_fill(~mask, float("-inf"))
    order = torch.sort(ordered, dim=1, descending=True, stable=True).indices
    positions = torch.arange(1, ordered.shape[1] + 1, device=ordered.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def lambda_weights(scores: Any, model_scores: Any, mask: Any) -> Any:
    """Δ_ij = |G_i − G_j| · |1/D(τ_i) − 1/D(τ_j)| for every pair of every list (``[lists, K, K]``, no gradient)."""
    import torch

    dtype = model_scores.dtype if model_scores.is_floating_point() else torch.float32
    gains = torch.exp2(scores.to(dtype)) - 1
    discounts = 1 / torch.log2(1 + model_ranks(model_scores, mask).to(dtype))
    return ((gains.unsqueeze(2) - gains.unsqueeze(1)).abs()
            * (discounts.unsqueeze(2) - discounts.unsqueeze(1)).abs())


def lipo_loss(policy_logps: Any, reference_logps: Any, scores: Any, mask: Any, beta: float = 0.1) -> LipoLoss:
    """LiPO-λ from ``[lists, K]`` summed response log-probabilities of policy and reference (see the module)."""
    import torch
    import torch.nn.functional as F

    s = beta * (policy_logps - reference_logps).masked_fill(~mask, 0.0)
    pairs = _ordered_pairs(scores, mask)
    weights = lambda_weights(scores, s, mask)
    pair_losses = F.softplus(-(s.unsqueeze(2) - s.unsqueeze(1)))  # log(1 + exp(−(s_i − s_j)))
    losses = torch.where(pairs, weights * pair_losses, torch.zeros_like(pair_losses)).sum((1, 2))
    return LipoLoss(losses, s.detach(), scores, mask)


def lipo_batch_loss(model: Any, batch: dict[str, Any], beta: float = 0.1, reference_model: Any = None) -> LipoLoss:
    """Forward every response row through policy and reference and return the LiPO-λ loss of the batch's lists."""
    import torch

    inputs = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    with torch.no_grad(), reference_of(model, reference_model) as reference:
        reference_rows, _ = completion_logprobs(reference, *inputs)
    policy_rows, _ = completion_logprobs(model, *inputs)
    mask = batch["response_mask"]
    policy = policy_rows.new_zeros(mask.shape).masked_scatter(mask, policy_rows)
    reference_logps = reference_rows.new_zeros(mask.shape).masked_scatter(mask, reference_rows.detach())
    return lipo_loss(policy, reference_logps, batch["scores"], mask, beta)
