"""Clinical and privacy metrics computed from a model's logits.

Accuracy alone hides the harm that matters in medicine: a missed disease (false
negative) costs far more than a false alarm. Every evaluation therefore reports the
false-negative rate (FNR: positives predicted as any non-disease class), the
false-positive rate, and an expected clinical cost per case
``(c_FN * FN + c_FP * FP) / N``.
"""

from __future__ import annotations

from collections.abc import Sequence

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
