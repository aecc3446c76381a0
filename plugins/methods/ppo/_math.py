"""PPO mathematics for language models: per-token rewards with a KL penalty, GAE, whitening, clipped losses, EMA.

Tensors are ``[batch, response_length]`` with a ``mask`` that is 1 on real response tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def masked_mean(values: Any, mask: Any) -> Any:
    """Mean of ``values`` where ``mask`` is 1."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values: Any, mask: Any, shift_mean: bool = True) -> Any:
    """``values`` normalised to zero mean and unit variance over the masked entries (advantage normalisation)."""
    import torch

    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def kl_per_token(logprobs: Any, reference_logprobs: Any, estimator: str = "k1") -> Any:
    """Per-token KL(policy ‖ reference) estimate from sampled tokens: ``k1`` = log-ratio, ``k3`` = Schulman's."""
    import torch

    log_ratio = logprobs - reference_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r} (k1 or k3)")


def token_rewards(scores: Any, logprobs: Any, reference_logprobs: Any, mask: Any, kl_coef: float,
                  estimator: str = "k1") -> tuple[Any, Any]:
    """Per-token rewards −β·KL at every token plus the sequence score at the last token; and the per-token KL."""
    import torch

    kl = kl_per_token(logprobs, reference_logprobs, estimator) * mask
    rewards = -kl_coef * kl
    last = (mask.cumsum(-1) == mask.sum(-1, keepdim=True)) & mask.bool()
    last_index = torch.where(last.any(-1), last.float().argmax(-1), torch.zeros_like(mask[:, 0]).long())
    rewards[torch.arange(rewards.shape[0]), last_index] += scores.to(rewards.dtype)
    return rewards * mask, kl


def generalized_advantages(rewards: Any, values: Any, mask: Any, gamma: float = 1.0,
                           lam: float = 0.95) -> tuple[Any, Any]:
    """GAE(γ, λ) advantages and returns (advantages + values), zero after the end of each response."""
    import torch

    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        running = running * mask[:, t]
        advantages[:, t] = running
        next_value = values[:, t] * mask[:, t]
    return advantages, (advantages + values) * mask


@dataclass
class PPOLoss:
    """The combined PPO loss and its parts."""

    loss: Any
    policy_loss: Any
    value_loss: Any
    clip_fraction: Any
    approx_kl: Any

    def metrics(self) -> dict[str, float]:
        """Scalars to log."""
        return {"loss": float(self.loss.detach()), "policy_loss": float(self.policy_loss.detach()),
                "value_loss": float(self.value_loss.detach()), "clip_fraction": float(self.clip_fraction),
                "approx_kl": float(self.approx_kl)}


def ppo_loss(logprobs: Any, old_logprobs: Any, advantages: Any, values: Any, old_values: Any, returns: Any,
             mask: Any, clip_range: float = 0.2, value_clip_range: float = 0.2, value_coef: float = 0.1) -> PPOLoss:
    """Clipped surrogate policy loss plus clipped value loss (``value_coef`` × ½·max of squared errors)."""
    import torch

    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    policy_loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    values_clipped = old_values + torch.clamp(values - old_values, -value_clip_range, value_clip_range)
    value_loss = 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (values_clipped - returns) ** 2), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).float(), mask)
        approx_kl = 0.5 * masked_mean((logprobs - old_logprobs) ** 2, mask)
    return PPOLoss(policy_loss + value_coef * value_loss, policy_loss, value_loss, clip_fraction, approx_kl)


class ParameterEMA:
    """An exponential moving average of a model's trainable parameters (kept in float32 on their device)."""

    def __init__(self, model: Any, decay: float = 0.99) -> None:
        self.decay = decay
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        parameters = dict(model.named_parameters())
        self.shadow = {n: parameters[n].detach().float().clone() for n in self.names}

    def update(self, model: Any) -> None:
        """shadow ← decay·shadow + (1 − decay)·current."""
        import torch

        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name in self.names:
                self.shadow[name].lerp_(parameters[name].detach().float(), 1 - self.decay)

    def copy_to(self, model: Any) -> None:
        """Overwrite the model's trainable parameters with the averages."""
        import torch

        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name in self.names:
                parameters[name].copy_(self.shadow[name].to(parameters[name].dtype))

    def state_dict(self) -> dict[str, Any]:
        """For checkpoints."""
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.decay = state["decay"]
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
