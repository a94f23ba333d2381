"""The population membership-inference attack: can an observer tell training members from unseen samples?"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field


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
