"""Clinical metrics computed from a model's logits, and the per-sample outcomes behind them.

Accuracy alone hides the harm that matters in medicine: a missed disease (false negative)
costs far more than a false alarm. Every evaluation therefore reports the false-negative rate
(FNR: positives predicted as any non-disease class), the false-positive rate, and an expected
clinical cost per case ``(c_FN * FN + c_FP * FP) / N``.
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


@dataclass(frozen=True)
class AveragedOutcomes:
    """Per sample, the share of several models (the K retrains) that got it right, missed it, raised an alarm.

    It answers the same questions as :class:`SampleOutcomes` with fractions instead of 0/1, so every slice
    and bootstrap interval of "the retrains" is the average over them, sample by sample.
    """

    labels: np.ndarray
    correct: np.ndarray  # share of models right on each sample
    called_positive: np.ndarray  # share of models calling each sample a disease class
    loss: np.ndarray  # mean loss

    @classmethod
    def of(cls, outcomes: Sequence[SampleOutcomes], positive: Sequence[int]) -> AveragedOutcomes:
        first = outcomes[0]
        return cls(
            labels=first.labels,
            correct=np.mean([o.correct for o in outcomes], axis=0).astype(np.float64),
            called_positive=np.mean([np.isin(o.pred, list(positive)) for o in outcomes], axis=0).astype(np.float64),
            loss=np.mean([o.loss for o in outcomes], axis=0),
        )

    def __len__(self) -> int:
        return len(self.labels)

    def true_positive_class(self, positive: Sequence[int]) -> np.ndarray:
        return np.isin(self.labels, list(positive))

    def missed(self, positive: Sequence[int]) -> np.ndarray:
        return self.true_positive_class(positive) * (1.0 - self.called_positive)

    def false_alarm(self, positive: Sequence[int]) -> np.ndarray:
        return ~self.true_positive_class(positive) * self.called_positive


Outcomes = SampleOutcomes | AveragedOutcomes


def matched_weights(yf: np.ndarray, yt: np.ndarray) -> np.ndarray:
    """Per test image, its weight in the class-matched mean (each class weighted by its share of the forget set)."""
    w = np.zeros(len(yt))
    for c in np.unique(yf):
        rows = yt == c
        if rows.any():
            w[rows] = (yf == c).mean() / rows.sum()
    return w / w.sum() if w.sum() else w


def forget_auc(phi_f: np.ndarray, yf: np.ndarray, phi_t: np.ndarray, yt: np.ndarray) -> float | None:
    """P(a forgotten image is more confident than an unseen image of its class), weighted to the forget class mix.

    0.5: the model cannot tell them apart (as after retraining); above, it still remembers them; below, it
    forgot them so hard that they stand out. Used where no retrains are at hand (the calibrated verdict and
    the methods' stopping rule). None if no class has both.
    """
    return class_mix_mean(forget_auc_by_class(phi_f, yf, phi_t, yt), yf)


def class_mix_mean(per_class: dict[int, float], yf: np.ndarray) -> float | None:
    """``per_class`` values averaged with the weight of each class in ``yf`` (None if empty): forget_auc from its
    per-class AUCs, for a caller that has them already."""
    weights = {c: float((yf == c).mean()) for c in per_class}
    total = sum(weights.values())
    return sum(weights[c] * v for c, v in per_class.items()) / total if total else None


def forget_auc_by_class(phi_f: np.ndarray, yf: np.ndarray, phi_t: np.ndarray, yt: np.ndarray) -> dict[int, float]:
    """:func:`forget_auc` of each forget class that has unseen images (class number -> AUC).

    The average can hide classes going opposite ways: one class's forgotten images still remembered while
    another's are forgotten past unseen ones (docs/results, stop 32).
    """
    from sklearn.metrics import roc_auc_score

    out = {}
    for c in np.unique(yf):
        f, t = phi_f[yf == c], phi_t[yt == c]
        if len(f) and len(t):
            out[int(c)] = float(roc_auc_score(np.r_[np.ones(len(f)), np.zeros(len(t))], np.r_[f, t]))
    return out


def _placements(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each value of ``a``: the share of ``b`` below it, ties counting half (sorted search, no n x m matrix)."""
    ranked = np.sort(b)
    below = np.searchsorted(ranked, a, side="left")
    ties = np.searchsorted(ranked, a, side="right") - below
    return (below + 0.5 * ties) / len(b)


def _mean_var(x: np.ndarray) -> float:
    """Variance of the mean of ``x`` (0 for fewer than two values)."""
    return float(x.var(ddof=1) / len(x)) if len(x) > 1 else 0.0


def forget_auc_se(phi_f: np.ndarray, yf: np.ndarray, phi_t: np.ndarray, yt: np.ndarray) -> float | None:
    """Standard error of :func:`forget_auc` from its images (DeLong's placement values, class by class).

    Within one model the forgotten and the unseen images are compared with each other, so a shift of the
    whole model cancels and what varies is which images were drawn: DeLong's variance of each class's AUC,
    ``var(V10)/n_forget + var(V01)/n_unseen``, summed with the squared class weights. None as for the AUC.
    """
    total, var = 0.0, 0.0
    for c in np.unique(yf):
        f, t = phi_f[yf == c], phi_t[yt == c]
        if len(f) and len(t):
            w = len(f) / len(phi_f)
            v10, v01 = _placements(f, t), 1.0 - _placements(t, f)
            var += w**2 * (_mean_var(v10) + _mean_var(v01))
            total += w
    return float(np.sqrt(var)) / total if total else None


def auroc(logits: torch.Tensor, labels: torch.Tensor, positive: Sequence[int]) -> float | None:
    """Threshold-free: how well the disease probability ranks disease cases above the rest (None if one is absent)."""
    from sklearn.metrics import roc_auc_score

    is_pos = np.isin(labels.numpy(), list(positive))
    if is_pos.all() or not is_pos.any():
        return None
    p_disease = torch.softmax(logits.double(), 1)[:, list(positive)].sum(1).numpy()
    return float(roc_auc_score(is_pos, p_disease))


class SliceMetrics(BaseModel):
    """Accuracy and missed-disease rate of one model on a subset of samples."""

    accuracy: float | None = Field(description="Fraction classified correctly (None on an empty slice)")
    fnr: float | None = Field(description="Missed disease among the slice's positives (None without positives)")


def slice_metrics(outcomes: Outcomes, mask: np.ndarray, positive: Sequence[int]) -> SliceMetrics:
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


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """phi = log(p_y / (1 - p_y)) of the true class, computed stably as z_y - logsumexp(z_{k != y}).

    LiRA's logit scaling: softmax confidences pile up near 1 for members, where a Gaussian
    fits badly; their log-odds are close to normal.
    """
    z = logits.double()
    true = z.gather(1, labels[:, None]).squeeze(1)
    others = z.scatter(1, labels[:, None], float("-inf"))
    return (true - torch.logsumexp(others, 1)).numpy()
