"""The population membership attack on the requested samples, against held-out test samples."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from medforget.audit.report import PopulationAudit, SampleScore
from medforget.data import Split, concat_splits
from medforget.engine import predict
from medforget.evaluation import population_mia


def fisher_p(a_hit: int, a_n: int, b_hit: int, b_n: int) -> float:
    """Two-sided Fisher exact p-value that groups a and b have different hit rates."""
    from scipy.stats import fisher_exact

    table = [[a_hit, a_n - a_hit], [b_hit, b_n - b_hit]]
    return float(fisher_exact(table, alternative="two-sided")[1])


def stratified_rates(
    req: np.ndarray, req_labels: np.ndarray, ref: np.ndarray, ref_labels: np.ndarray
) -> tuple[float, float, float]:
    """Requested hit rate, reference hit rate weighted to the requested class mix, and a two-sided CMH p-value.

    A disease-heavy request is judged against held-out samples *of the same classes*: disease cases may
    look unseen more often than healthy ones to any model, so the raw reference rate would be unfair.
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    tables, weighted, overall = [], 0.0, float(ref.mean()) if len(ref) else 0.0
    for c in np.unique(req_labels):
        r_c, f_c = req[req_labels == c], ref[ref_labels == c]
        weighted += len(r_c) / len(req) * (float(f_c.mean()) if len(f_c) else overall)
        if len(f_c):
            tables.append([[r_c.sum(), len(r_c) - r_c.sum()], [f_c.sum(), len(f_c) - f_c.sum()]])
    p = 1.0
    if tables:
        with np.errstate(all="ignore"):
            res = StratifiedTable(np.asarray(tables, dtype=float).transpose(1, 2, 0)).test_null_odds(correction=True)
        p = float(res.pvalue) if np.isfinite(res.pvalue) else 1.0
    return float(req.mean()), weighted, p


def halves(n: int, seed: int) -> tuple[list[int], list[int]]:
    perm = np.random.default_rng(seed).permutation(n).tolist()
    return sorted(perm[: n // 2]), sorted(perm[n // 2 :])


def population_audit(
    model: torch.nn.Module,
    retain: Split,
    requested: Split,
    test: Split,
    device: torch.device,
    seed: int = 0,
    name: Callable[[str, int], str] = lambda sid, i: sid,
) -> PopulationAudit:
    """The population attack (:func:`medforget.metrics.population_mia`) on the requested samples.

    Members are the retained training samples (never the requested ones, nor earlier
    deletions); non-members are one random half of the test split. The other half is never
    shown to the attack and is scored together with the requested samples by the same fitted
    attack, so ``reference_non_member_rate`` is an honest held-out rate for true non-members
    (the attack's in-sample rate on its own non-members would flatter it).

    The check compares the two rates, in both directions and class by class: a forgotten sample should
    be called "non-member" about as often as a sample of its class that the model never saw; much less
    often is a trace of training, much more often singles the requested samples out.
    """
    attack_test, ref_rows = halves(len(test), seed)
    reference = test.subset(ref_rows)
    fit_nm = test.subset(attack_test)
    scored = concat_splits("scored", [requested, reference])
    logits = {k: predict(model, s, device) for k, s in (("retain", retain), ("nm", fit_nm), ("scored", scored))}
    mia = population_mia(
        (logits["retain"], retain.labels), (logits["nm"], fit_nm.labels), (logits["scored"], scored.labels), seed=seed
    )
    scores = np.asarray(mia.forget_scores)
    k = len(requested)
    req, ref = scores[:k], scores[k:]
    r_req, r_ref, p = stratified_rates(req < 0.5, requested.labels.numpy(), ref < 0.5, reference.labels.numpy())
    return PopulationAudit(
        n_requested=k,
        n_reference=len(ref),
        n_attack_members=mia.n_members,
        n_attack_non_members=mia.n_non_members,
        attack_auc=mia.attack_auc,
        requested_non_member_rate=r_req,
        reference_non_member_rate=r_ref,
        gap=r_ref - r_req,
        p_value=p,
        requested=[
            SampleScore(sample=name(s, i), label=int(y), member_score=float(v))
            for i, (s, y, v) in enumerate(zip(requested.sample_ids, requested.labels.tolist(), req, strict=True))
        ],
    )
