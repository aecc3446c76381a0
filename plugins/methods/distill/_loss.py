"""The distillation losses, per answer position: forward/reverse KL, generalized JSD, and the ULD distance.

Every function takes logits of shape ``(N, V)`` (one row per answer position, already gathered) and returns ``(N,)``
losses in float32; the caller sums or averages. Temperature divides both sides' logits before the softmax (as TRL's
GKD trainer does, without the ``T²`` factor of Hinton et al.).

- forward KL ``KL(p_T ‖ p_S) = Σ p_T (log p_T − log p_S)`` — mean-seeking: the student covers every mode of the
  teacher;
- reverse KL ``KL(p_S ‖ p_T)`` — mode-seeking;
- generalized JSD (Agarwal et al. 2024, Eq. 1, as TRL's ``GKDTrainer.generalized_jsd_loss`` defines it): with the
  mixture ``M = (1 − β) p_S + β p_T``, ``JSD_β = β KL(p_T ‖ M) + (1 − β) KL(p_S ‖ M)``; ``β = 0`` is taken to mean
  forward KL and ``β = 1`` reverse KL (the formula itself vanishes there);
- ULD (Boizard et al. 2024): the Wasserstein-1 distance between the two probability vectors each sorted in
  decreasing order, the shorter vocabulary padded with zeros: ``Σ_i |p_S^↓(i) − p_T^↓(i)|``. It needs no shared
  vocabulary, so it works across tokenizers.
"""

from __future__ import annotations

from typing import Any

KL_LOSSES = ("forward_kl", "reverse_kl", "jsd")


def _log_probs(logits: Any, temperature: float) -> Any:
    import torch.nn.functional as F

    return F.log_softmax(logits.float() / temperature, dim=-1)


def _kl(log_p: Any, log_q: Any) -> Any:
    """``KL(p ‖ q)`` per row from log-probabilities (0 · log 0 taken as 0)."""
    import torch

    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)


def forward_kl(student_logits: Any, teacher_logits: Any, temperature: float = 1.0) -> Any:
    """``KL(teacher ‖ student)`` per row."""
    return _kl(_log_probs(teacher_logits, temperature), _log_probs(student_logits, temperature))


def reverse_kl(student_logits: Any, teacher_logits: Any, temperature: float = 1.0) -> Any:
    """``KL(student ‖ teacher)`` per row."""
    return _kl(_log_probs(student_logits, temperature), _log_probs(teacher_logits, temperature))


def generalized_jsd(student_logits: Any, teacher_logits: Any, beta: float = 0.5, temperature: float = 1.0) -> Any:
    """``β KL(p_T ‖ M) + (1 − β) KL(p_S ‖ M)``, ``M = (1 − β) p_S + β p_T``, per row (β 0: forward KL, 1: reverse)."""
    import math

    import torch

    if beta <= 0:
        return forward_kl(student_logits, teacher_logits, temperature)
    if beta >= 1:
        return reverse_kl(student_logits, teacher_logits, temperature)
    log_s = _log_probs(student_logits, temperature)
    log_t = _log_probs(teacher_logits, temperature)
    log_m = torch.logsumexp(torch.stack([log_s + math.log1p(-beta), log_t + math.log(beta)]), dim=0)
    return beta * _kl(log_t, log_m) + (1 - beta) * _kl(log_s, log_m)


def kl_family_loss(kind: str, student_logits: Any, teacher_logits: Any, beta: float = 0.5,
                   temperature: float = 1.0) -> Any:
    """The divergence ``kind`` (one of :data:`KL_LOSSES`) per row, over the vocabulary both logits share.

    Tokenizers with one vocabulary may still give models of different output widths (an embedding padded to a
    multiple of 64): the extra columns belong to no token and are left out.
    """
    width = min(student_logits.shape[-1], teacher_logits.shape[-1])
    student_logits, teacher_logits = student_logits[..., :width], teacher_logits[..., :width]
    if kind == "forward_kl":
        return forward_kl(student_logits, teacher_logits, temperature)
    if kind == "reverse_kl":
        return reverse_kl(student_logits, teacher_logits, temperature)
    if kind == "jsd":
        return generalized_jsd(student_logits, teacher_logits, beta, temperature)
    raise ValueError(f"unknown divergence {kind!r}; expected one of {', '.join(KL_LOSSES)}")


def uld_distance(student_logits: Any, teacher_logits: Any, temperature: float = 1.0) -> Any:
    """Universal Logit Distillation: the W1 distance between sorted probability vectors per row.

    Padding the smaller vocabulary with zeros adds the larger side's probabilities beyond the smaller width, so the
    sum is ``Σ_{i<m} |p_S^↓(i) − p_T^↓(i)| + Σ_{i≥m} p^↓(i)`` with ``m`` the smaller width (no padded copy is made).
    """
    student = _log_probs(student_logits, temperature).exp().sort(dim=-1, descending=True).values
    teacher = _log_probs(teacher_logits, temperature).exp().sort(dim=-1, descending=True).values
    width = min(student.shape[-1], teacher.shape[-1])
    head = (student[..., :width] - teacher[..., :width]).abs().sum(-1)
    return head + student[..., width:].sum(-1) + teacher[..., width:].sum(-1)


def align_by_index(student_counts: list[int], teacher_counts: list[int]) -> tuple[list[int], list[int]]:
    """Row indices into the flattened student and teacher answer logits, pairing the k-th answer token of each
    example on both sides and cutting every example to the shorter of its two answers (ULD's alignment).

    ``student_counts[b]``/``teacher_counts[b]`` are the answer positions of example ``b`` on each side, in the
    row-major order in which the answer logits were gathered.
    """
    student_rows: list[int] = []
    teacher_rows: list[int] = []
    student_start = teacher_start = 0
    for n_student, n_teacher in zip(student_counts, teacher_counts, strict=True):
        shared = min(n_student, n_teacher)
        student_rows += range(student_start, student_start + shared)
        teacher_rows += range(teacher_start, teacher_start + shared)
        student_start += n_student
        teacher_start += n_teacher
    return student_rows, teacher_rows
