"""The fused CPU LoRA branch: a peft LoRA ``Linear`` layer's adapter term as one autograd function, for CPU training.

peft adds an adapter as ``result + lora_B(lora_A(dropout(x))) * scaling``. On CPU that costs, per layer and step:
a float noise tensor drawn by ``bernoulli_`` (about 7 ns an element on this machine), full-width elementwise passes
(the dropout, ``* scaling``, ``+ result``) forward and their mirrors backward, and autograd keeps the noise and the
dropped input for the backward pass: 8 bytes per input element, on seven projections per layer. This module plugs
into peft's own extension point for LoRA variants (``layer.lora_variant``) and computes the same value with:

- the keep-mask drawn as 16-bit integers from numpy's SFC64 (about 0.6 ns an element), seeded from torch's generator,
  so a checkpoint that saves torch's RNG state still replays the run exactly. ``p`` is rounded to a multiple of 2⁻¹⁶
  and kept inputs are scaled by ``1 / (1 - p)`` with that rounded ``p``, so the expectation is unchanged;
- both scale factors folded into the rank-r matrices, and ``+ result`` done by the output matmul (``addmm_``);
- only the 0/1 mask (4 bytes an element), the rank-r activations and ``x`` kept for the backward pass (``x`` is one
  tensor for the projections that read it: q/k/v, gate/up); the backward pass rebuilds the dropped input.

The adapter itself (names, shapes, config, saved files) is untouched: peft loads it as a plain LoRA adapter. The
function is used only for training on CPU without autocast; everywhere else (eval, ``no_grad``, CUDA's fused
dropout, bf16 autocast) the layer runs peft's own expression. ``tests/test_cpu_lora_branch.py`` checks values and
gradients against peft's expression with the same mask; ``make bench`` measures the gain.
"""

from __future__ import annotations

from typing import Any

RESOLUTION = 1 << 16


def keep_mask(shape: tuple[int, ...], p: float) -> tuple[Any, float]:
    """A 0/1 float32 keep-mask (1 with probability ``1 - p``) and the scale of kept entries, ``1 / (1 - p)``.

    ``p`` is rounded to a multiple of 2⁻¹⁶ and the scale uses the rounded value. numpy draws and casts the mask:
    several times faster here than torch's ``bernoulli_``, or its bool → float cast.
    """
    import numpy as np
    import torch

    threshold = round(p * RESOLUTION)
    seed = int(torch.randint(0, 2**62, (1,)))  # from torch's generator: resume restores it, so masks replay
    count = 1
    for size in shape:
        count *= size
    # Each 64-bit output of SFC64 gives four 16-bit draws: 2.7× faster here than Generator.integers(dtype=uint16).
    draws = np.random.SFC64(seed).random_raw((count + 3) // 4).view(np.uint16)[:count]
    keep = torch.from_numpy((draws >= threshold).astype(np.float32)).view(shape)
    return keep, RESOLUTION / (RESOLUTION - threshold) if threshold < RESOLUTION else 0.0


def _branch_function() -> Any:
    import torch

    class LoraBranch(torch.autograd.Function):
        """``result + scaling · ((x ⊙ keep) (keep_scale · A)ᵀ) Bᵀ``, saving x, the mask and ``x Aᵀ``.

        Both scale factors are applied to the rank-r matrices, never to a full-width activation.
        """

        @staticmethod
        def forward(ctx: Any, x: Any, result: Any, a: Any, b: Any, keep: Any, keep_scale: float,
                    scaling: float) -> Any:
            dropped = x if keep is None else x * keep
            hidden = dropped.reshape(-1, x.shape[-1]) @ (a * keep_scale).t()
            # The base layer's output is added to in place: its frozen matmul did not keep it for the backward pass
            # (autograd's version check would fail the backward pass if anything had).
            result.view(-1, result.shape[-1]).addmm_(hidden, b.t(), alpha=scaling)
            ctx.mark_dirty(result)
            ctx.save_for_backward(x, a, b, keep, hidden)
            ctx.keep_scale, ctx.scaling = keep_scale, scaling
            return result

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            x, a, b, keep, hidden = ctx.saved_tensors
            flat = grad.reshape(-1, grad.shape[-1])
            grad_hidden = flat @ (b * ctx.scaling)
            grad_x = grad_a = grad_b = None
            if ctx.needs_input_grad[0]:
                grad_x = (grad_hidden @ (a * ctx.keep_scale)).view(x.shape)
                if keep is not None:
                    grad_x.mul_(keep)
            if ctx.needs_input_grad[2]:
                dropped = x if keep is None else x * keep
                grad_a = (grad_hidden.t() @ dropped.reshape(-1, x.shape[-1])).mul_(ctx.keep_scale)
            if ctx.needs_input_grad[3]:
                grad_b = (hidden.t() @ flat).mul_(ctx.scaling).t().contiguous()
            return grad_x, grad if ctx.needs_input_grad[1] else None, grad_a, grad_b, None, None, None

    return LoraBranch


_BRANCH: Any = None


def lora_branch(x: Any, result: Any, a: Any, b: Any, p: float, scaling: float) -> Any:
    """``result + lora_B(lora_A(dropout(x, p))) * scaling`` for bias-free ``lora_A``/``lora_B`` weights ``a``, ``b``."""
    global _BRANCH
    if _BRANCH is None:
        _BRANCH = _branch_function()
    keep, keep_scale = keep_mask(tuple(x.shape), p) if p > 0 else (None, 1.0)
    if keep is not None and keep.dtype != x.dtype:
        keep = keep.to(x.dtype)
    if result.is_leaf or result._base is not None or not result.is_contiguous():
        result = result.clone()  # added to in place below: only a fresh, non-leaf tensor may be
    return _BRANCH.apply(x, result, a, b, keep, keep_scale, scaling)


def _fits(module: Any, adapter: str, x: Any) -> bool:
    """Training on CPU without autocast, plain dropout, bias-free adapter matrices of x's dtype."""
    import torch

    dropout = module.lora_dropout[adapter]
    lora_a, lora_b = module.lora_A[adapter], module.lora_B[adapter]
    return (torch.is_grad_enabled() and module.training and x.device.type == "cpu"
            and not torch.is_autocast_enabled("cpu") and lora_a.bias is None and lora_b.bias is None
            and isinstance(dropout, (torch.nn.Dropout, torch.nn.Identity)) and x.dtype == lora_a.weight.dtype)


def _variant_class() -> type:
    from peft.tuners.lora.layer import LoraVariant

    class FusedCpuLora(LoraVariant):
        """Plain LoRA (peft's merge and eval semantics) whose training branch on CPU is :func:`lora_branch`."""

        @staticmethod
        def init(module: Any, adapter_name: str, **kwargs: Any) -> None:
            """Nothing to add: the adapter's tensors are peft's."""

        @staticmethod
        def merge_safe(module: Any, active_adapter: str, orig_weight: Any) -> Any:
            """The merged weight, as for plain LoRA."""
            return orig_weight + module.get_delta_weight(active_adapter).to(orig_weight.dtype)

        @staticmethod
        def merge_unsafe(module: Any, active_adapter: str, orig_weight: Any) -> None:
            """Merge in place, as for plain LoRA."""
            orig_weight.data += module.get_delta_weight(active_adapter).to(orig_weight.dtype)

        @staticmethod
        def unmerge(module: Any, active_adapter: str, orig_weight: Any) -> Any:
            """Undo a merge, as for plain LoRA."""
            return orig_weight - module.get_delta_weight(active_adapter).to(orig_weight.dtype)

        @staticmethod
        def forward(module: Any, active_adapter: str, x: Any, result: Any, **kwargs: Any) -> Any:
            """``result + lora_B(lora_A(dropout(x))) * scaling``."""
            import torch

            lora_a, lora_b = module.lora_A[active_adapter], module.lora_B[active_adapter]
            dropout, scaling = module.lora_dropout[active_adapter], module.scaling[active_adapter]
            if _fits(module, active_adapter, x) and result.dtype == x.dtype:
                p = dropout.p if isinstance(dropout, torch.nn.Dropout) else 0.0
                return lora_branch(x, result, lora_a.weight, lora_b.weight, p, scaling)
            return result + lora_b(lora_a(dropout(x))) * scaling

    return FusedCpuLora


def install(model: Any) -> int:
    """Give every plain-LoRA ``Linear`` layer of a peft ``model`` the fused CPU branch; returns how many adapters.

    Layers that already have a variant (DoRA) and quantized or other layer types are left as they are.
    """
    from peft.tuners.lora.layer import Linear

    variant = _variant_class()()
    count = 0
    for module in model.modules():
        if type(module) is not Linear:
            continue
        for name in module.lora_A:
            if name not in module.lora_variant:
                module.lora_variant[name] = variant
                count += 1
    return count
