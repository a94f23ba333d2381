"""Per-sample evidence: does each forget sample look to the unlearned model the way it looks to a retrain?

Accuracy on the forget set says little on its own: a model that shifted its decision threshold gets
forget samples "wrong" without having forgotten them, and a model that forgot them may still classify
them right, as a retrain does. The question is per sample and threshold-free. For every sample we take
the logit-scaled confidence of its true class (LiRA's statistic; computed after each model's own bias
refit on validation, so a threshold shift does not count)

    phi = z_y - logsumexp(z_k, k != y)

and express the unlearned model's phi as a z-score against the K retrains' phi for the same sample:
the retrains' mean, and their spread (pooled over the samples of a class while K is small, per sample
from 16 retrains on). Positive z: the model is more confident than a model that never saw the sample
(under-forgetting, a trace of training); negative z: less confident (over-forgetting, which singles the
sample out, the Streisand effect).

Forgetting counts only where the forget set moves and comparable unseen data does not: a threshold
shift or a generally sharper model moves both. So the statistic judged is

    D = mean z over the forget set - mean z over test images with the forget set's class mix,

and its noise floor is D computed the same way for each retrain against the others (leave one out).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from medforget.evaluation.metrics import matched_weights

PER_SAMPLE_MIN = 16
"""Retrains needed before each sample gets its own spread; fewer pool the spread within each class."""
MIN_SD = 1e-3
BEYOND = 2.0


class SampleEvidence(BaseModel):
    """The unlearned model's per-sample confidences against the retrains' (z-scores; see the module)."""

    n_retrains: int
    variance: str = Field(description="'per-sample' (>= 16 retrains) or 'pooled by class'")
    forget_mean_z: float = Field(
        description="> 0 under-forgetting (more confident than a retrain), < 0 over-forgetting"
    )
    forget_share_beyond_2: float = Field(description="Share of forget samples with |z| > 2")
    test_mean_z: float = Field(description="Mean z of test images, weighted to the forget set's class mix")
    test_share_beyond_2: float
    difference: float = Field(description="forget_mean_z - test_mean_z: what moved on the forget set alone")
    sample_se: float | None = Field(
        None, description="Standard error of the difference from the per-image z-scores (images as independent)"
    )
    retrain_differences: list[float] = Field(
        default_factory=list, description="The same difference for each retrain against the others (its noise floor)"
    )
    forget_z: list[float] = Field(default_factory=list, description="Per forget sample z-score (rounded)")


def zscores(phi: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, str]:
    """z of ``phi`` [n] against reference confidences ``ref`` [k, n] of the same samples.

    Args:
        phi: one model's confidences.
        ref: the reference models' confidences (k >= 2).
        labels: each sample's class, for pooling the spread within classes.

    Returns:
        The z-scores and how the spread was estimated.
    """
    k = ref.shape[0]
    if k < 2:
        raise ValueError("z-scores need at least two reference models")
    mean = ref.mean(0)
    if k >= PER_SAMPLE_MIN:
        sd, mode = ref.std(0, ddof=1), "per-sample"
    else:
        sd, mode = np.zeros(len(phi)), "pooled by class"
        for c in np.unique(labels):
            rows = labels == c
            ss = ((ref[:, rows] - mean[rows]) ** 2).sum()
            sd[rows] = np.sqrt(ss / (rows.sum() * (k - 1)))
    return (phi - mean) / np.maximum(sd, MIN_SD), mode


def class_matched_mean(values: np.ndarray, labels: np.ndarray, weights: dict[int, float]) -> float:
    """Mean of ``values`` with each class weighted by ``weights`` (classes absent here are left out)."""
    present = {c: w for c, w in weights.items() if (labels == c).any()}
    total = sum(present.values())
    if not total:
        return float(values.mean()) if len(values) else 0.0
    return float(sum(w * values[labels == c].mean() for c, w in present.items()) / total)


def _difference(
    phi_f: np.ndarray, ref_f: np.ndarray, phi_t: np.ndarray, ref_t: np.ndarray, labels: tuple[np.ndarray, np.ndarray]
) -> tuple[float, np.ndarray, np.ndarray]:
    yf, yt = labels
    zf, _ = zscores(phi_f, ref_f, yf)
    zt, _ = zscores(phi_t, ref_t, yt)
    weights = {int(c): float((yf == c).mean()) for c in np.unique(yf)}
    return float(zf.mean() - class_matched_mean(zt, yt, weights)), zf, zt


def difference_se(zf: np.ndarray, zt: np.ndarray, yf: np.ndarray, yt: np.ndarray) -> float:
    """Standard error of D = mean z (forget) - class-matched mean z (test), the images taken as independent.

    An exact retrain's z-scores have mean zero on every image, so their squares estimate their variance; a
    shift of the whole model (a threshold, a sharper or duller model) moves forget and test images alike and
    cancels in D, which is why the images can be treated as independent here.
    """
    wt = matched_weights(yf, yt)
    return float(np.sqrt(np.sum(zf**2) / len(zf) ** 2 + np.sum((wt * zt) ** 2)))


def sample_evidence(
    forget: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> SampleEvidence | None:
    """The unlearned model's evidence against the retrains, with each retrain's leave-one-out difference.

    Args:
        forget: ``(phi_unlearned [n_f], phi_retrains [k, n_f], labels [n_f])``.
        test: the same for the test split.

    Returns:
        The evidence, or None with fewer than 2 retrains (no spread to compare with) or an empty forget set.
    """
    (phi_f, ref_f, yf), (phi_t, ref_t, yt) = forget, test
    k = ref_f.shape[0]
    if k < 2 or len(phi_f) == 0:
        return None
    d, zf, zt = _difference(phi_f, ref_f, phi_t, ref_t, (yf, yt))
    loo = []
    if k >= 3:
        for j in range(k):
            others = [i for i in range(k) if i != j]
            loo.append(_difference(ref_f[j], ref_f[others], ref_t[j], ref_t[others], (yf, yt))[0])
    weights = {int(c): float((yf == c).mean()) for c in np.unique(yf)}
    return SampleEvidence(
        n_retrains=k,
        variance=zscores(phi_f, ref_f, yf)[1],
        forget_mean_z=float(zf.mean()),
        forget_share_beyond_2=float((np.abs(zf) > BEYOND).mean()),
        test_mean_z=class_matched_mean(zt, yt, weights),
        test_share_beyond_2=float((np.abs(zt) > BEYOND).mean()),
        difference=d,
        sample_se=difference_se(zf, zt, yf, yt),
        retrain_differences=[round(x, 4) for x in loo],
        forget_z=[round(float(x), 3) for x in zf],
    )


__all__ = ["SampleEvidence", "class_matched_mean", "difference_se", "sample_evidence", "zscores"]
