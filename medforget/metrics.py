"""Clinical and privacy metrics computed from a model's logits.

Accuracy alone hides the harm that matters in medicine: a missed disease (false
negative) costs far more than a false alarm. Every evaluation therefore reports the
false-negative rate (FNR: positives predicted as any non-disease class), the
false-positive rate, and an expected clinical cost per case
``(c_FN * FN + c_FP * FP) / N``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field


class SetMetrics(BaseModel):
    """A model's results on one set of samples (retain, forget or test)."""

    n: int
    accuracy: float | None = Field(description="Fraction classified correctly")
    fnr: float | None = Field(None, description="Missed disease: positives predicted negative / positives")
    fpr: float | None = Field(None, description="False alarms: negatives predicted positive / negatives")
    clinical_cost: float | None = Field(None, description="(c_FN*FN + c_FP*FP) / N")
    n_positive: int = 0
    per_class_accuracy: dict[str, float | None] = Field(default_factory=dict)
    confusion: list[list[int]] = Field(default_factory=list, description="rows = true class, columns = predicted")
    mean_loss: float | None = None


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> np.ndarray:
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes).numpy()


def set_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    positive: Sequence[int],
    fn_cost: float = 5.0,
    fp_cost: float = 1.0,
) -> SetMetrics:
    """Accuracy, FNR, FPR, clinical cost, per-class accuracy and confusion matrix."""
    n = len(labels)
    if n == 0:
        return SetMetrics(n=0, accuracy=None)
    pred = logits.argmax(1)
    k = len(classes)
    cm = confusion_matrix(pred, labels, k)
    pos = torch.zeros(k, dtype=torch.bool)
    pos[list(positive)] = True
    true_pos = pos[labels]
    pred_pos = pos[pred]
    fn = int((true_pos & ~pred_pos).sum())
    fp = int((~true_pos & pred_pos).sum())
    n_pos = int(true_pos.sum())
    return SetMetrics(
        n=n,
        accuracy=float((pred == labels).float().mean()),
        fnr=_rate(fn, n_pos),
        fpr=_rate(fp, n - n_pos),
        clinical_cost=(fn_cost * fn + fp_cost * fp) / n,
        n_positive=n_pos,
        per_class_accuracy={c: _rate(int(cm[i, i]), int(cm[i].sum())) for i, c in enumerate(classes)},
        confusion=cm.tolist(),
        mean_loss=float(F.cross_entropy(logits, labels)),
    )


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels, reduction="none")


# --------------------------------------------------------------------------- membership inference


class MiaResult(BaseModel):
    """Population membership-inference attack on the forget set.

    An attacker who can query the model learns to tell training members (retain samples)
    from non-members (test samples) by per-sample loss, confidence and entropy, then judges
    each forget sample. After perfect unlearning the forget samples look like non-members
    as often as they do for a model retrained without them.
    """

    forget_non_member_rate: float = Field(
        description="MIA-efficacy: fraction of forget samples the attack calls non-members (higher = more forgotten)"
    )
    forget_member_score: float = Field(description="Mean membership probability the attack gives forget samples")
    attack_auc: float = Field(description="AUC of the attack on held-out retain vs test samples (0.5 = no leakage)")
    n_members: int
    n_non_members: int
    forget_scores: list[float] = Field(default_factory=list, description="Per forget sample membership probability")
    test_scores: list[float] = Field(default_factory=list, description="Per test sample membership probability")


def mia_features(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per-sample attack features: log-loss, confidence, entropy and margin of the true class."""
    logp = F.log_softmax(logits.float(), 1)
    p = logp.exp()
    loss = -logp.gather(1, labels[:, None]).squeeze(1)
    entropy = -(p * logp).sum(1)
    true_p = p.gather(1, labels[:, None]).squeeze(1)
    other = p.scatter(1, labels[:, None], -1.0).max(1).values
    feats = torch.stack([torch.log(loss + 1e-12), p.max(1).values, entropy, true_p - other], 1)
    return feats.numpy().astype(np.float64)


def population_mia(
    retain: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    forget: tuple[torch.Tensor, torch.Tensor],
    seed: int = 0,
) -> MiaResult:
    """Fit a logistic-regression attack on balanced retain (members) vs test (non-members); score forget.

    Each argument is ``(logits, labels)``. The attack's own quality is measured on a
    held-out half, so a reader can tell "the model leaks nothing" from "the attack is weak".
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    xm, xn = mia_features(*retain), mia_features(*test)
    n = min(len(xm), len(xn))
    xm = xm[rng.permutation(len(xm))[:n]]
    xn = xn[rng.permutation(len(xn))[:n]]
    x = np.concatenate([xm, xn])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    half = rng.permutation(2 * n)
    fit_idx, eval_idx = half[:n], half[n:]

    def attack() -> object:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    probe = attack().fit(x[fit_idx], y[fit_idx])
    ev = y[eval_idx]
    auc = float(roc_auc_score(ev, probe.predict_proba(x[eval_idx])[:, 1])) if 0 < ev.sum() < len(ev) else 0.5
    clf = attack().fit(x, y)
    f_scores = clf.predict_proba(mia_features(*forget))[:, 1] if len(forget[1]) else np.zeros(0)
    t_scores = clf.predict_proba(mia_features(*test))[:, 1]
    return MiaResult(
        forget_non_member_rate=float((f_scores < 0.5).mean()) if len(f_scores) else 0.0,
        forget_member_score=float(f_scores.mean()) if len(f_scores) else 0.0,
        attack_auc=auc,
        n_members=n,
        n_non_members=n,
        forget_scores=[round(float(s), 4) for s in f_scores],
        test_scores=[round(float(s), 4) for s in t_scores],
    )


# --------------------------------------------------------------------------- per-sample outcomes and uncertainty


@dataclass(frozen=True)
class SampleOutcomes:
    """One model's per-sample results on one set, kept so slices and intervals need no second inference.

    Every deeper analysis (difficulty terciles, attribute groups, bootstrap intervals) is a
    different aggregation of the same per-sample facts; holding them here lets ``evaluate()``
    run each model once per set and every analysis reuse the result.
    """

    labels: np.ndarray
    pred: np.ndarray
    loss: np.ndarray

    @classmethod
    def from_logits(cls, logits: torch.Tensor, labels: torch.Tensor) -> SampleOutcomes:
        if len(labels) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(labels=empty, pred=empty, loss=np.zeros(0))
        return cls(
            labels=labels.numpy().astype(np.int64),
            pred=logits.argmax(1).numpy().astype(np.int64),
            loss=per_sample_loss(logits.float(), labels).numpy().astype(np.float64),
        )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.labels

    def true_positive_class(self, positive: Sequence[int]) -> np.ndarray:
        """Whether each sample's true label is a disease class."""
        return np.isin(self.labels, list(positive))

    def missed(self, positive: Sequence[int]) -> np.ndarray:
        """Whether each sample is a disease case predicted as a non-disease class (a false negative)."""
        return self.true_positive_class(positive) & ~np.isin(self.pred, list(positive))

    def false_alarm(self, positive: Sequence[int]) -> np.ndarray:
        """Whether each sample is a non-disease case predicted as a disease class (a false positive)."""
        return ~self.true_positive_class(positive) & np.isin(self.pred, list(positive))


class Interval(BaseModel):
    """A two-sided confidence interval (by default the central 95% of a bootstrap distribution)."""

    low: float
    high: float


class SliceMetrics(BaseModel):
    """Accuracy and missed-disease rate of one model on a subset of samples."""

    accuracy: float | None = Field(description="Fraction classified correctly (None on an empty slice)")
    fnr: float | None = Field(description="Missed disease among the slice's positives (None without positives)")


def slice_metrics(outcomes: SampleOutcomes, mask: np.ndarray, positive: Sequence[int]) -> SliceMetrics:
    """Accuracy and FNR on the samples selected by ``mask`` (same definitions as :func:`set_metrics`)."""
    n = int(mask.sum())
    pos = outcomes.true_positive_class(positive) & mask
    n_pos = int(pos.sum())
    return SliceMetrics(
        accuracy=float(outcomes.correct[mask].mean()) if n else None,
        fnr=float(outcomes.missed(positive)[mask].sum() / n_pos) if n_pos else None,
    )


def difficulty_terciles(loss: np.ndarray) -> list[np.ndarray]:
    """Row indices of the easy, medium and hard thirds of samples by (the original model's) loss.

    Sorting by loss and cutting the order into three near-equal parts (sizes differ by at most
    one) always partitions the samples, even with ties or fewer than three samples, unlike
    quantile thresholds which can leave a tercile empty or put a sample in two. The sort is
    stable, so ties keep row order and the split is reproducible.
    """
    order = np.argsort(loss, kind="stable")
    return [part.astype(np.int64) for part in np.array_split(order, 3)]


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
