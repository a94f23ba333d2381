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
