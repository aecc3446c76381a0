"""The KTO loss (Ethayarajh et al. 2024, eq. 7) as trl 1.16's ``KTOTrainer`` computes it.

With r = log π(y|x) − log π_ref(y|x) for each row and the reference point z0 = max(0, mean over the batch's
mismatched rows (x_i, y_{i−1}) of log π − log π_ref), detached:

- a desirable row (label true) costs λ_D · (1 − σ(β·(r − z0)));
- an undesirable row (label false) costs λ_U · (1 − σ(β·(z0 − r)));

and the batch's loss is the mean over its rows. The reference is the policy with its adapter switched off (or a
frozen copy for ``adapter=none``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.train.logprobs import completion_logprobs
from llmctl.train.reference import reference_of


@dataclass
class KtoLoss:
    """Per-row KTO losses (weighted), the rows' rewards (β × log-ratio, detached), labels and the reference point."""

    losses: Any
    rewards: Any
    labels: Any
    kl: Any

    @property
    def loss(self) -> Any:
        """The mean loss over the rows."""
        return self.losses.mean()

    def metrics(self) -> dict[str, float]:
        """Loss, the KL reference point and the mean reward of desirable and undesirable rows (and their margin)."""
        metrics = {"loss": float(self.loss.detach()), "kl": float(self.kl)}
        if bool(self.labels.any()):
            metrics["rewards/chosen"] = float(self.rewards[self.labels].mean())
        if not bool(self.labels.all()):
            metrics["rewards/rejected"] = float(self.rewards[~self.labels].mean())
        if "rewards/chosen" in metrics and "rewards/rejected" in metrics:
            metrics["rewards/margin"] = metrics["rewards/chosen"] - metrics["rewards/rejected"]
        return metrics


def kto_loss(policy_logps: Any, reference_logps: Any, labels: Any, kl_policy_logps: Any, kl_reference_logps: Any,
             beta: float = 0.1, desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> KtoLoss:
    """KTO from summed completion log-probabilities of the rows and of the mismatched KL rows (see the module)."""
    import torch

    kl = (kl_policy_logps - kl_reference_logps).mean().detach().clamp(min=0)
    ratio = policy_logps - reference_logps
    desirable = desirable_weight * (1 - torch.sigmoid(beta * (ratio - kl)))
    undesirable = undesirable_weight * (1 - torch.sigmoid(beta * (kl - ratio)))
    losses = torch.where(labels.bool(), desirable, undesirable)
    return KtoLoss(losses, beta * ratio.detach(), labels.bool(), kl)


def kto_batch_loss(model: Any, batch: dict[str, Any], beta: float = 0.1, desirable_weight: float = 1.0,
                   undesirable_weight: float = 1.0, reference_model: Any = None) -> KtoLoss:
    """Forward a KTO batch (rows and KL rows) through policy and reference and return the loss.

    Only the rows' policy forward keeps activations for the backward pass: the reference point is detached, so the
    KL rows go through the policy without gradients.
    """
    import torch

    inputs = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    kl_inputs = (batch["KL_input_ids"], batch["KL_attention_mask"], batch["KL_completion_mask"])
    with torch.no_grad():
        with reference_of(model, reference_model) as reference:
            reference_logps, _ = completion_logprobs(reference, *inputs)
            kl_reference_logps, _ = completion_logprobs(reference, *kl_inputs)
        kl_policy_logps, _ = completion_logprobs(model, *kl_inputs)
    policy_logps, _ = completion_logprobs(model, *inputs)
    return kto_loss(policy_logps, reference_logps, batch["label"], kl_policy_logps, kl_reference_logps, beta,
                    desirable_weight, undesirable_weight)
