"""Pseudo-Negative Regularization (Cha, Cho and Moon, ICML 2024, arXiv 2306.05101).

A pseudo-negative is an embedding produced by *the other model* (previous or current) that
must not be confused with the anchor. Notation for a batch of B images with V = 2 views,
all N = 2B views flattened to rows a = 1..N: z_a the current model's projection, z_a^- the
frozen previous model's (teacher's, no gradient), p_a = g(z_a) the predictor's output,
a+ the other view of a's image, s the cosine similarity, t a temperature.

Contrastive methods (SimCLR here): pseudo-negatives enter both terms.

- SSL term, the NT-Xent anchor z_a with the teacher's embeddings of the other views as
  extra negatives (:func:`pnr_contrastive_ssl`):

      L_ssl^PNR = 1/N sum_a -log( e^{s(z_a, z_a+)/t}
                  / ( sum_{b != a} e^{s(z_a, z_b)/t} + sum_{b != a} e^{s(z_a, z_b^-)/t} ) )

- regularization term, CaSSLe's predicted-vs-teacher InfoNCE with the current model's
  embeddings of the other views as extra negatives (:func:`pnr_contrastive_regularization`):

      L_reg^PNR = 1/N sum_a -log( e^{s(p_a, z_a^-)/t}
                  / ( sum_{b != a} e^{s(p_a, z_b^-)/t} + sum_{b != a} e^{s(p_a, z_b)/t} ) )

  As in the paper code, the positive e^{s(p_a, z_a^-)/t} is not part of its own
  denominator, and neither is the anchor's own current embedding z_a (p_a = g(z_a)).

Since NT-Xent is the first equation without its second sum,
L_ssl^PNR = NT-Xent + 1/N sum_a log(1 + S_a^- / S_a) with S_a and S_a^- the two sums
(:func:`pnr_ssl_excess`): what a plugin adds on top of a template that already pays NT-Xent.

Non-contrastive methods (Barlow Twins, BYOL, SimSiam, VICReg): the pseudo-negative of view v
is the teacher's embedding of the *other augmentation of the same image*, z^{-,v'}, applied
to the regularization term only (:func:`pseudo_negative_regularization`):

    L = L_ssl + lambda * D_distill(p^v, z^{-,v}) - lambda_neg * D(p^v, sg(z^{-,v'}))

The reference is the official code (github.com/csm9493/PNR): ``cassle/losses/pnr.py:
simclr_moco_loss_func`` for the two contrastive terms, ``cassle/distillers/barlow_pnr.py``,
``byol_pnr.py`` and ``vicreg_pnr.py`` for the non-contrastive form (D is the negative cosine
for Barlow Twins, BYOL's 2 - 2cos for BYOL, the invariance MSE for VICReg; each method
declares its D with the reference's ``negative_lamb``, ``SSLMethod.pnr_negative``). The
formulas are taken from, and tested against, that code; the paper's equation numbers are not
cited.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _rows(*tensors: Tensor) -> list[Tensor]:
    """``[B, 2, D]`` tensors (same shape) -> L2-normalised ``[2B, D]`` rows, image-major."""
    shape = tensors[0].shape
    for tensor in tensors:
        if tensor.shape != shape or tensor.ndim != 3 or tensor.shape[1] != 2:
            raise ValueError(
                "contrastive PNR needs [B, 2, D] tensors of one shape, got "
                + ", ".join(str(tuple(t.shape)) for t in tensors)
            )
    return [F.normalize(t.flatten(0, 1), dim=1) for t in tensors]


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def _others(similarity: Tensor, temperature: float) -> Tensor:
    """Logits ``similarity / t`` with the diagonal (same view, same image) masked out."""
    eye = torch.eye(similarity.shape[0], dtype=torch.bool, device=similarity.device)
    return (similarity / temperature).masked_fill(eye, float("-inf"))


def _ssl_sums(student: Tensor, teacher: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Per anchor: logits against the other current views and the other teacher views."""
    _check_temperature(temperature)
    z, z_prev = _rows(student, teacher.detach())
    return _others(z @ z.T, temperature), _others(z @ z_prev.T, temperature)


def pnr_contrastive_ssl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """PNR's SSL term: NT-Xent with the teacher's embeddings of the other views added.

    Args:
        student: Current projections ``[B, 2, D]``.
        teacher: Previous model's projections ``[B, 2, D]`` (detached here).
        temperature: The SSL method's temperature t.

    Example:
        >>> z = torch.randn(8, 2, 16)
        >>> bool(pnr_contrastive_ssl(z, z, 0.5) > SimCLR().loss(z))  # more negatives
        True
        >>> pnr_contrastive_ssl(z, z, 0.5) - SimCLR().loss(z)  # teacher == student: log 2
        tensor(0.6931)
    """
    current, previous = _ssl_sums(student, teacher, temperature)
    n = current.shape[0]
    positives = torch.arange(n, device=current.device) ^ 1  # rows 2i, 2i+1: one image
    return F.cross_entropy(torch.cat([current, previous], dim=1), positives)


def pnr_ssl_excess(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``L_ssl^PNR - NT-Xent = 1/N sum_a log(1 + S_a^- / S_a)``: what the pseudo-negatives add.

    ``S_a = sum_{b != a} exp(s(z_a, z_b)/t)`` and ``S_a^- = sum_{b != a} exp(s(z_a, z_b^-)/t)``;
    the positive's logit cancels in the difference. Always > 0.

    Example:
        >>> z, z_prev = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
        >>> total = SimCLR().loss(z) + pnr_ssl_excess(z, z_prev, 0.5)  # == pnr_contrastive_ssl
    """
    current, previous = _ssl_sums(student, teacher, temperature)
    return F.softplus(previous.logsumexp(dim=1) - current.logsumexp(dim=1)).mean()


def pnr_contrastive_regularization(
    predicted: Tensor, teacher: Tensor, student: Tensor, temperature: float = 0.2
) -> Tensor:
    """PNR's regularization term: p_a must pick z_a^- among the teacher's and the student's views.

    Negatives of anchor p_a: the teacher's embeddings of every other view (CaSSLe's), and the
    current model's embeddings of every other view (the pseudo-negatives). Neither the
    positive z_a^- nor z_a itself is in the denominator, as in the paper code. Gradients reach
    the predicted and the student embeddings, never the teacher's.

    Args:
        predicted: ``g(z)``, ``[B, 2, D]``.
        teacher: Previous model's projections ``[B, 2, D]``.
        student: Current projections ``[B, 2, D]`` (the pseudo-negatives).
        temperature: Distillation temperature (the paper code's ``distill_temperature``).

    Example:
        >>> z_prev = torch.randn(8, 2, 16)
        >>> close = pnr_contrastive_regularization(z_prev, z_prev, torch.randn(8, 2, 16))
    """
    _check_temperature(temperature)
    p, z_prev, z = _rows(predicted, teacher.detach(), student)
    positive = (p * z_prev).sum(dim=1) / temperature
    negatives = torch.cat([_others(p @ z_prev.T, temperature), _others(p @ z.T, temperature)], 1)
    return (negatives.logsumexp(dim=1) - positive).mean()


def other_views(embeddings: Tensor) -> Tensor:
    """View v gets view v+1's embedding (mod V): for two views, the views swapped."""
    if embeddings.ndim != 3 or embeddings.shape[1] < 2:
        raise ValueError(f"need [B, V >= 2, D] embeddings, got {tuple(embeddings.shape)}")
    return embeddings.roll(-1, dims=1)


def negative_cosine(predicted: Tensor, target: Tensor) -> Tensor:
    """``-mean cos(predicted, sg(target))`` over all rows of ``[B, V, D]`` tensors."""
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted and target must match, got {tuple(predicted.shape)} and "
            f"{tuple(target.shape)}"
        )
    return -F.cosine_similarity(predicted, target.detach(), dim=-1).mean()


def mean_squared_error(predicted: Tensor, target: Tensor) -> Tensor:
    """``mean((predicted - sg(target))^2)`` over all elements (VICReg's invariance term)."""
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted and target must match, got {tuple(predicted.shape)} and "
            f"{tuple(target.shape)}"
        )
    return F.mse_loss(predicted, target.detach())


def pseudo_negative_regularization(
    predicted: Tensor,
    teacher: Tensor,
    distance: Callable[[Tensor, Tensor], Tensor] = negative_cosine,
) -> Tensor:
    """The non-contrastive pseudo-negative term ``-D(p^v, sg(z^{-,v'}))``, to be minimised.

    The pseudo-negative of view v is the teacher's embedding of the image's other view v';
    minimising ``-D`` pushes the prediction away from it. With the default D (negative
    cosine) the term is ``+mean_v cos(p^v, z^{-,v'})``, in [-1, 1].

    Args:
        predicted: ``g(z)``, ``[B, V, D]``.
        teacher: Previous model's embeddings ``[B, V, D]`` (detached here).
        distance: D, a loss between ``[B, V, D]`` predictions and targets (e.g. a method's
            ``distillation_loss``).

    Example:
        >>> z_prev = torch.randn(8, 2, 16)
        >>> pseudo_negative_regularization(other_views(z_prev), z_prev)  # on the negatives
        tensor(1.)
    """
    return -distance(predicted, other_views(teacher.detach()))
