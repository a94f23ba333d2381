"""Bootstrap confidence intervals: how far a rate could move with another sample of the same size."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel


class Interval(BaseModel):
    """A two-sided confidence interval (by default the central 95% of a bootstrap distribution)."""

    low: float
    high: float


def bootstrap_ratios(
    numerators: np.ndarray,
    denominators: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Bootstrap distribution of ``sum(numerators) / sum(denominators)`` for several statistics at once.

    ``numerators`` and ``denominators`` are ``[n_samples, n_statistics]`` per-sample contributions
    (accuracy: correct / 1; FNR: missed / is-positive). All statistics are computed on the *same*
    resamples, so a difference of two columns (unlearned minus retrain on the same samples) is a
    paired bootstrap. Returns ``[n_resamples, n_statistics]``, NaN where a resample's denominator
    is zero (e.g. no positives drawn).

    Why multinomial counts instead of an index matrix: resampling n samples with replacement
    draws each *distinct* per-sample outcome pattern a multinomially distributed number of times,
    so drawing those counts directly is exactly the percentile bootstrap over samples, but costs
    memory O(resamples x patterns) instead of O(resamples x samples). A 90 000-image retain set
    has a few dozen patterns of 0/1 outcomes and costs no more than a 50-image forget set.
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    if num.ndim == 1:
        num, den = num[:, None], den[:, None]
    n, m = num.shape
    if den.shape != num.shape:
        raise ValueError(f"numerators {num.shape} and denominators {den.shape} differ in shape")
    if n == 0:
        return np.full((n_resamples, m), np.nan)
    patterns, counts = np.unique(np.concatenate([num, den], axis=1), axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=n_resamples).astype(np.float64)  # [B, patterns]
    sums = draws @ patterns  # [B, 2m]
    top, bottom = sums[:, :m], sums[:, m:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> Interval | None:
    """The central ``level`` of a bootstrap distribution, ignoring NaN resamples; None if all are NaN."""
    values = np.asarray(samples, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(low=float(low), high=float(high))


def bootstrap_ci(values: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> Interval | None:
    """Percentile-bootstrap interval of the mean of per-sample ``values`` (e.g. 0/1 correct flags)."""
    v = np.asarray(values, dtype=np.float64)
    return percentile_interval(bootstrap_ratios(v, np.ones_like(v), n_resamples, seed)[:, 0], level)
