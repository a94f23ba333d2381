"""Where an exact retrain could land by chance: the noise margin of each check.

A check compares the unlearned model's value ``u`` with the mean ``m`` of K retrains. Were the model one
more exact retrain, ``u - m`` would still not be zero: retrains differ from each other. The noise margin
is how far it could be, at a stated confidence, estimated one of two ways:

* **between retrains** (test accuracy, AUROC, missed disease, membership inference): the retrains'
  standard deviation ``s``, scaled for one new value against a mean of K, ``t(K-1, p) * s * sqrt(1 +
  1/K)``. These numbers move with the model as a whole (a retrain that is better or worse overall,
  an operating point refit on a few validation cases, an attack refit per model), which only the
  spread between models shows; with 3 retrains it rests on 2 degrees of freedom, hence the wide
  Student-t quantile.
* **per image** (the two forget checks that subtract unseen test images of the same classes: forget
  accuracy against matched test accuracy, and the per-image evidence): a shift of the whole model
  moves the forgotten and the unseen images alike and cancels, so what is left varies image by
  image. The standard error of ``u - m`` from the image-by-image differences, ``sqrt(sum_i w_i^2
  (u_i - mean_k r_ki)^2)``, rests on as many degrees of freedom as there are images (a normal
  quantile). On BreastMNIST pools of 5 retrains it matched the spread of the same difference between
  retrains (``benchmarks/verdict_calibration.py`` prints both).

**The threshold's own noise** (the checks scored at an operating point refit on validation: missed
disease, and test accuracy when models are recalibrated) is a floor under the first basis. The threshold
rests on the few validation disease cases nearest it, so one retrain can land far from the others while
3 retrains happen to agree (an exact retrain failed test accuracy by 13 points so, with the retrains
within 0.7 of each other). Each model's evaluation measures that noise by refitting its operating point on
bootstrap draws of validation (:func:`medforget.evaluation.calibration.refit_spread`); with ``v_u`` the
candidate's variance and ``v_r`` the retrains', ``u - m`` varies at least by ``sqrt(v_u + mean(v_r) / K)``,
and the margin is the larger of the between-retrain margin and ``z(p)`` times that (:func:`refit_se`). The
retrains' spread already contains this noise, so the two are not added.

The retrain-free verdict (:mod:`medforget.calibrate`) has a third basis, **requests**: its values come from
a few proxy requests x a few retrains each, and the request it judges is none of them, so its margin is
where a retrain of another request lands (:func:`requests_margin`).

**The confidence level is set for the whole verdict.** A verdict fails when any of its checks fails,
so six checks at 95% each would fail an exact retrain about one time in four. The verdict's chance of
failing exact unlearning is held at ``alpha`` (5%) by giving each of the m checks ``alpha / m``
(Bonferroni): a two-sided check uses the ``1 - alpha / (2m)`` quantile, a one-sided one ``1 - alpha / m``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

Basis = Literal["retrains", "images", "requests", "threshold"]


@dataclass(frozen=True)
class Level:
    """The quantile probability of one check: the verdict's ``alpha`` shared among ``checks``."""

    alpha: float
    checks: int
    two_sided: bool

    @property
    def p(self) -> float:
        share = self.alpha / self.checks
        return 1 - share / 2 if self.two_sided else 1 - share


def between_margin(values: Sequence[float], level: Level) -> float | None:
    """t(K-1, p) * s * sqrt(1 + 1/K): where one more retrain lands around the mean of ``values`` (None if K < 2)."""
    k = len(values)
    if k < 2:
        return None
    sd = float(np.std(values, ddof=1))
    return float(student_t.ppf(level.p, k - 1) * sd * math.sqrt(1 + 1 / k))


def requests_margin(values: Sequence[float], per_request: int, level: Level) -> float | None:
    """Where a retrain of *another* request lands around values grouped by request (the calibrated verdict).

    ``values`` are P requests x R retrains, request by request. A new request differs from the P measured
    ones (which patients left moves test accuracy and missed disease) as well as by its retrain's seed, so
    this is the one-way random-effects prediction margin: with ``S_B^2`` the variance of the P request
    means and ``S_W^2`` the pooled variance within requests, ``var = S_B^2 (1 + 1/P) + S_W^2 (1 - 1/R)``,
    with Satterthwaite's degrees of freedom. With 2 requests the between-request part rests on one degree
    of freedom, so it is wide unless the requests agree.

    Returns:
        The margin, or None when the values cannot be grouped so (fewer than 2 requests or 2 retrains each,
        or a value missing).
    """
    if per_request < 2 or len(values) < 2 * per_request or len(values) % per_request:
        return None
    v = np.asarray(values, dtype=float).reshape(-1, per_request)
    p, r = v.shape
    between = float(np.var(v.mean(1), ddof=1)) * (1 + 1 / p)
    within = float(np.mean(np.var(v, axis=1, ddof=1))) * (1 - 1 / r)
    total = between + within
    if total == 0:
        return 0.0
    df = total**2 / (between**2 / (p - 1) + within**2 / (p * (r - 1)))
    return float(student_t.ppf(level.p, df) * math.sqrt(total))


def per_sample_se(candidate: np.ndarray, retrains: np.ndarray, weights: np.ndarray) -> float:
    """Standard error of ``sum_i w_i (candidate_i - mean_k retrains_ki)`` from the image-by-image differences.

    Args:
        candidate: ``[n]`` per-image scores of the model judged (1/0 correct; z-scores).
        retrains: ``[k, n]`` the same scores of the retrains.
        weights: ``[n]`` each image's weight in the check's value (its sign does not matter).

    Returns:
        The standard error (0 for no images).
    """
    diff = candidate - retrains.mean(0)
    return float(np.sqrt(np.sum((weights * diff) ** 2)))


def refit_se(candidate_sd: float | None, retrain_sds: Sequence[float | None]) -> float | None:
    """``sqrt(v_u + mean(v_r) / K)``: the threshold refit's own noise in ``u - m`` (None if a model lacks it)."""
    if candidate_sd is None or not retrain_sds or any(s is None for s in retrain_sds):
        return None
    mean_var = float(np.mean([s**2 for s in retrain_sds]))  # type: ignore[operator]
    return math.sqrt(candidate_sd**2 + mean_var / len(retrain_sds))


def noise_margin(
    values: Sequence[float],
    level: Level,
    sample_se: float | None = None,
    per_request: int | None = None,
    threshold_se: float | None = None,
) -> tuple[float | None, Basis]:
    """The check's noise margin and what it rests on (see the module docstring).

    Args:
        values: the retrains' values of the check's metric.
        level: the check's confidence level.
        sample_se: for a check on images with whole-model shifts subtracted, the per-image standard error of the
            difference; None for a check judged against the spread between retrains.
        per_request: retrains per request when ``values`` come from several requests (a calibration): the
            margin is then :func:`requests_margin` (the retrains' spread alone if they cannot be grouped).
        threshold_se: for a check scored at an operating point refit on validation, :func:`refit_se`: the margin
            is at least ``z(p)`` times it.

    Returns:
        The margin (None with fewer than 2 retrains: the noise cannot be measured) and its basis.
    """
    if len(values) < 2:
        return None, "retrains"
    if sample_se is not None:
        return float(norm.ppf(level.p)) * sample_se, "images"
    grouped = requests_margin(values, per_request, level) if per_request else None
    if grouped is not None:
        return grouped, "requests"
    between = between_margin(values, level)
    if threshold_se is not None and between is not None:
        floor = float(norm.ppf(level.p)) * threshold_se
        if floor > between:
            return floor, "threshold"
    return between, "retrains"


__all__ = ["Basis", "Level", "between_margin", "noise_margin", "per_sample_se", "refit_se", "requests_margin"]
