"""Decision thresholds: a model's operating point, and the output bias refit that removes threshold shifts.

Much of what unlearning methods report as "forgetting" is a shift of the decision threshold: the whole
model leans toward one class, so forget-set accuracy falls, and so does test accuracy, without anything
being forgotten. Two tools tell the two apart:

* :func:`fit_output_bias` refits one additive logit offset per class on the validation split (which no
  model trained on), by minimising cross-entropy. Metrics recomputed with it are free of threshold shifts;
  forgetting must survive that refit to count.
* :func:`operating_point` chooses the offset added to the disease logits so that the validation
  sensitivity (1 - FNR) reaches a target, e.g. the original model's. Comparing FNRs at the same
  sensitivity target compares models, not thresholds; it is also how a deployed model is recalibrated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from pydantic import BaseModel, Field
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax
from scipy.stats import beta

from medforget.evaluation.metrics import forget_auc, logit_confidence


def fit_output_bias(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """The per-class logit offset (mean zero) minimising cross-entropy of ``logits + offset`` on ``labels``.

    Args:
        logits: ``[n, k]`` validation logits.
        labels: ``[n]`` true classes.

    Returns:
        ``[k]`` offsets; zeros if the split is empty.
    """
    z = logits.double().numpy()
    y = labels.numpy()
    k = z.shape[1] if z.ndim == 2 else 0
    if len(y) == 0 or k == 0:
        return np.zeros(k)
    onehot = np.eye(k)[y]

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        lp = log_softmax(z + b, axis=1)
        grad = (softmax(z + b, axis=1) - onehot).mean(0)
        return float(-(lp * onehot).sum(1).mean()), grad

    res = minimize(loss, np.zeros(k), jac=True, method="L-BFGS-B")
    b = np.clip(res.x, -50.0, 50.0)  # a class absent from validation would run off to infinity
    return b - b.mean()


def unseen_auc(
    forget_logits: torch.Tensor, forget_labels: torch.Tensor, val_logits: torch.Tensor, val_labels: torch.Tensor
) -> float | None:
    """How well a model tells forget samples from validation samples of the same classes, free of threshold shifts.

    The output bias is refit on validation (:func:`fit_output_bias`) and both sets are scored by their
    logit-scaled confidence; the result is their class-matched AUC (:func:`forget_auc`).
    It is what the methods' stopping rule measures, and what ``medforget calibrate`` records for retrains, so the
    two are the same number. None if no forget class has validation samples.
    """
    return forget_auc(*unseen_confidences(forget_logits, forget_labels, val_logits, val_labels))


def unseen_confidences(
    forget_logits: torch.Tensor, forget_labels: torch.Tensor, val_logits: torch.Tensor, val_labels: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`unseen_auc` compares: ``(phi_forget, forget labels, phi_val, val labels)``, the logit-scaled
    confidences after the output bias is refit on validation (for :func:`forget_auc` and its per-class form)."""
    bias = torch.as_tensor(fit_output_bias(val_logits, val_labels), dtype=forget_logits.dtype)
    return (
        logit_confidence(forget_logits + bias, forget_labels),
        forget_labels.numpy(),
        logit_confidence(val_logits + bias, val_labels),
        val_labels.numpy(),
    )


class OperatingPoint(BaseModel):
    """The offset added to the disease logits so that validation sensitivity reaches a target."""

    offset: float = Field(description="Added to every disease-class logit before the argmax")
    target_sensitivity: float = Field(description="Validation sensitivity asked for (1 - FNR)")
    val_sensitivity: float | None = Field(description="Validation sensitivity reached with the offset")
    val_positives: int = Field(description="Disease cases in the validation split")
    sensitivity_lower_bound: float | None = Field(
        description="One-sided 95% Clopper-Pearson lower bound of the true sensitivity at this operating point"
    )
    guaranteed: bool = Field(
        description="Whether validation has enough disease cases that the lower bound is within 5 points of the "
        "target; if not, the target is met on validation but not guaranteed on new patients"
    )


def _sensitivity(margin: np.ndarray, offset: float) -> float:
    return float((margin + offset > 0).mean()) if len(margin) else math.nan


def disease_margin(logits: torch.Tensor, positive: Sequence[int]) -> np.ndarray:
    """max disease logit - max other logit: a sample is called disease when this plus the offset is > 0."""
    z = logits.double().numpy()
    pos = np.zeros(z.shape[1], dtype=bool)
    pos[list(positive)] = True
    return z[:, pos].max(1) - z[:, ~pos].max(1)


def _offset(margin: np.ndarray, target: float) -> np.ndarray:
    """The offset of :func:`operating_point` from the disease cases' margins (the last axis; at least one)."""
    n_pos = margin.shape[-1]
    need = max(1, math.ceil(target * n_pos - 1e-9))  # disease cases that must be called disease
    ranked = -np.sort(-margin, axis=-1)
    caught = ranked[..., need - 1]
    missed = ranked[..., need] if need < n_pos else caught - 1.0
    return np.where(caught > missed, -(caught + missed) / 2, -caught + 1e-6)


def operating_point(
    val_logits: torch.Tensor, val_labels: torch.Tensor, positive: Sequence[int], target: float
) -> OperatingPoint:
    """The most specific offset whose validation sensitivity is at least ``target``.

    An offset of 0 is the plain argmax; a positive offset calls disease more readily, a negative one less.
    The offset sits midway between the margin of the last disease case that must be caught and the next one,
    so it does not hang on one sample's exact logit. If validation has no disease cases the offset is 0 and
    nothing is guaranteed.
    """
    is_pos = np.isin(val_labels.numpy(), list(positive))
    margin = disease_margin(val_logits, positive)[is_pos]
    n_pos = int(is_pos.sum())
    if n_pos == 0:
        return OperatingPoint(
            offset=0.0,
            target_sensitivity=target,
            val_sensitivity=None,
            val_positives=0,
            sensitivity_lower_bound=None,
            guaranteed=False,
        )
    offset = float(_offset(margin, target))
    achieved = _sensitivity(margin, offset)
    hits = round(achieved * n_pos)
    lower = float(beta.ppf(0.05, hits, n_pos - hits + 1)) if hits > 0 else 0.0
    return OperatingPoint(
        offset=offset,
        target_sensitivity=target,
        val_sensitivity=achieved,
        val_positives=n_pos,
        sensitivity_lower_bound=lower,
        guaranteed=lower >= target - 0.05,
    )


def refit_spread(  # noqa: PLR0913 -- both splits' logits and labels, the target, and the bootstrap's size
    val_logits: torch.Tensor,
    val_labels: torch.Tensor,
    test_logits: torch.Tensor,
    test_labels: torch.Tensor,
    positive: Sequence[int],
    target: float,
    replicates: int = 200,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """How much test accuracy and test FNR move when the operating point is refit on another validation draw.

    An operating point rests on the few validation disease cases near the threshold (BreastMNIST has 21):
    one of them scored a little lower moves the threshold, and test accuracy with it, by several points.
    Models that differ only by seed differ in exactly that way, and 3 retrains seldom show how far.
    This measures it for one model: validation's disease cases (the only ones the operating point depends
    on) are resampled with replacement, the operating point of :func:`operating_point` is refit on each
    draw, and the test set is scored at it.

    Args:
        val_logits, val_labels: the validation split the operating point is fitted on.
        test_logits, test_labels: the test split scored at each refit operating point.
        positive: the disease classes.
        target: the validation sensitivity each refit must reach.
        replicates: bootstrap draws.
        seed: seed of the draws (the same for every model of one verification).

    Returns:
        The standard deviations of test accuracy and of test FNR over the draws (None for a set that has none
        of the cases a rate needs, or a validation split without disease cases).
    """
    yv, yt = val_labels.numpy(), test_labels.numpy()
    pos_v, pos_t = np.isin(yv, list(positive)), np.isin(yt, list(positive))
    if not pos_v.any() or len(yt) == 0:
        return None, None
    z = test_logits.double().numpy()
    pos = np.isin(np.arange(z.shape[1]), list(positive))
    # An offset on the disease logits only decides disease vs not; which class within each side is unchanged.
    right_if_disease = np.where(pos, z, -np.inf).argmax(1) == yt
    right_if_not = np.where(pos, -np.inf, z).argmax(1) == yt
    margin_t, margin_v = disease_margin(test_logits, positive), disease_margin(val_logits, positive)[pos_v]
    draws = np.random.default_rng(seed).choice(margin_v, (replicates, len(margin_v)))  # only disease cases matter
    called = margin_t[None, :] + _offset(draws, target)[:, None] > 0  # [replicates, test images]
    acc = np.where(called, right_if_disease, right_if_not).mean(1)
    fnr = (~called[:, pos_t]).mean(1) if pos_t.any() else None
    return float(np.std(acc, ddof=1)), float(np.std(fnr, ddof=1)) if fnr is not None else None


def apply_offset(logits: torch.Tensor, positive: Sequence[int], offset: float) -> torch.Tensor:
    """Logits with ``offset`` added to the disease classes."""
    out = logits.clone()
    out[:, list(positive)] += offset
    return out


__all__ = ["OperatingPoint", "apply_offset", "disease_margin", "fit_output_bias", "operating_point", "refit_spread"]
