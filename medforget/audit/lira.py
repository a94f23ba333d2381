"""LiRA and U-LiRA: shadow-model likelihood-ratio attacks on the requested samples."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import norm

from medforget import progress
from medforget.audit.membership import fisher_p
from medforget.audit.report import LOG_LR_CLIP, LiraAudit, SampleLikelihood, TprAtFpr, VarianceMode, sample_namer
from medforget.config import AuditOptions, TrainConfig
from medforget.data import Split, concat_splits
from medforget.engine import predict, train_model
from medforget.evaluation import logit_confidence
from medforget.methods import UnlearnTask
from medforget.session import Task

LIRA_PER_SAMPLE_MIN = 16
"""Each target needs this many "in" and "out" shadows before per-sample variances are used (else pooled/global)."""
MIN_SD = 1e-2
"""Floor of a fitted standard deviation (logit units), so a degenerate fit cannot make a likelihood infinite."""
TARGET_FPRS = (0.01, 0.001)


def lira_likelihoods(
    phi_shadow: np.ndarray, in_mask: np.ndarray, phi_target: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray], VarianceMode]:
    """Per-target log likelihood ratios from shadow confidences ``[n_shadows, n_targets]``.

    Means are per target (the mean phi of its in-shadows and of its out-shadows). The variance
    is estimated as reliably as the shadow count allows:

    * ``per-sample`` when every target has at least :data:`LIRA_PER_SAMPLE_MIN` in and out
      shadows (LiRA proper: each sample its own spread);
    * ``pooled`` when every target has at least 2 of each: one within-target variance for "in"
      and one for "out", pooled over all targets (sum of squared deviations from each target's own
      mean over the sum of n - 1). A per-target variance from 2-15 points is mostly noise, while
      the pooled one has hundreds of degrees of freedom and, unlike the global estimate below,
      does not mix in how much targets differ from each other (which would flatten every LR);
    * ``global`` otherwise (2 or 3 shadows): the "fixed variance" of Carlini et al., the spread of
      all in-phi values and of all out-phi values across targets and shadows.

    Standard deviations are floored at :data:`MIN_SD`.
    """
    inm = in_mask.astype(bool)
    n_in, n_out = inm.sum(0), (~inm).sum(0)
    if n_in.min() < 1 or n_out.min() < 1:
        raise ValueError("every target needs at least one in and one out shadow")
    mu_in = np.where(inm, phi_shadow, 0).sum(0) / n_in
    mu_out = np.where(~inm, phi_shadow, 0).sum(0) / n_out
    ss_in = np.where(inm, (phi_shadow - mu_in) ** 2, 0).sum(0)
    ss_out = np.where(~inm, (phi_shadow - mu_out) ** 2, 0).sum(0)
    fewest = min(n_in.min(), n_out.min())
    mode: VarianceMode
    if fewest >= LIRA_PER_SAMPLE_MIN:
        mode = "per-sample"
        sd_in, sd_out = np.sqrt(ss_in / (n_in - 1)), np.sqrt(ss_out / (n_out - 1))
    elif fewest >= 2:
        mode = "pooled"
        sd_in = np.full(phi_target.shape, math.sqrt(ss_in.sum() / (n_in - 1).sum()))
        sd_out = np.full(phi_target.shape, math.sqrt(ss_out.sum() / (n_out - 1).sum()))
    else:
        mode = "global"
        sd_in = np.full(phi_target.shape, np.std(phi_shadow[inm]))
        sd_out = np.full(phi_target.shape, np.std(phi_shadow[~inm]))
    sd_in, sd_out = np.maximum(sd_in, MIN_SD), np.maximum(sd_out, MIN_SD)
    log_lr = norm.logpdf(phi_target, mu_in, sd_in) - norm.logpdf(phi_target, mu_out, sd_out)
    fits = {"mu_in": mu_in, "sd_in": sd_in, "mu_out": mu_out, "sd_out": sd_out, "n_in": n_in, "n_out": n_out}
    return log_lr, fits, mode


def tpr_at_fpr(positive: np.ndarray, negative: np.ndarray, target_fpr: float) -> TprAtFpr:
    """TPR at the largest empirical FPR not above ``target_fpr``, thresholding scores from the negatives.

    The threshold is the (m+1)-th highest negative score with m = floor(target_fpr * n_negative):
    with fewer than 1/target_fpr negatives m is 0 and a positive counts only if it beats every
    negative, which is the conservative reading of a rate the sample cannot resolve.
    """
    neg = np.sort(negative)[::-1]
    m = math.floor(target_fpr * len(neg))
    thr = float(neg[m]) if m < len(neg) else -math.inf
    return TprAtFpr(
        target_fpr=target_fpr,
        achieved_fpr=float((negative > thr).mean()) if len(negative) else 0.0,
        threshold_log_lr=None if math.isinf(thr) else thr,
        tpr=float((positive > thr).mean()) if len(positive) else 0.0,
    )


def _likelihoods(split: Split, scores: _Scores, cols: range, name: Callable[[str, int], str]) -> list[SampleLikelihood]:
    phi, log_lr, fits = scores.phi, scores.log_lr, scores.fits
    out = []
    for j, col in enumerate(cols):
        clipped = float(np.clip(log_lr[col], -LOG_LR_CLIP, LOG_LR_CLIP))
        out.append(
            SampleLikelihood(
                sample=name(split.sample_ids[j], j),
                label=int(split.labels[j]),
                phi=float(phi[col]),
                mu_in=float(fits["mu_in"][col]),
                sd_in=float(fits["sd_in"][col]),
                mu_out=float(fits["mu_out"][col]),
                sd_out=float(fits["sd_out"][col]),
                n_in=int(fits["n_in"][col]),
                n_out=int(fits["n_out"][col]),
                log_lr=clipped,
                lr=math.exp(clipped),
            )
        )
    return out


@dataclass
class _Scores:
    phi: np.ndarray
    log_lr: np.ndarray
    fits: dict[str, np.ndarray]


@dataclass
class _Plan:
    """Which targets each shadow trains on: the requested samples plus as many test references."""

    targets: Split
    n_requested: int
    in_mask: np.ndarray  # [n_shadows, n_targets]
    rng: np.random.Generator


def _plan(task: Task, n_shadows: int, seed: int) -> _Plan:
    rng = np.random.default_rng(seed)
    test = task.dataset.test
    n_ref = min(len(task.forget), len(test))
    references = test.subset(sorted(rng.choice(len(test), n_ref, replace=False).tolist()))
    targets = concat_splits("targets", [task.forget, references])
    in_mask = np.zeros((n_shadows, len(targets)), dtype=bool)
    for j in range(len(targets)):
        n_in = n_shadows // 2 + (int(rng.integers(2)) if n_shadows % 2 else 0)
        in_mask[rng.choice(n_shadows, n_in, replace=False), j] = True
    return _Plan(targets, len(task.forget), in_mask, rng)


def _unlearner(task: Task) -> tuple[Any, Any] | None:
    """The recorded unlearning method and its parameters, for U-LiRA's "in" shadows; None if there is none."""
    from medforget.methods import get_method

    u = task.checkpoint.meta.unlearning
    if u is None or u.method == "retrain":
        return None
    spec = get_method(u.method)
    return spec, spec.parse_params(u.params)


def _shadow(task: Task, plan: _Plan, i: int, cfg: TrainConfig, unlearner: Any) -> tuple[np.ndarray, int, float | None]:
    """Train shadow ``i`` on a random half of the retained data plus its "in" targets; with an unlearner, then
    unlearn those targets with the recorded method (U-LiRA). Returns phi on every target, its size, val acc."""
    retain, dataset, device = task.retain, task.dataset, task.device
    half = retain.subset(sorted(plan.rng.choice(len(retain), len(retain) // 2, replace=False).tolist()))
    ins = plan.targets.subset(np.flatnonzero(plan.in_mask[i]).tolist())
    train = concat_splits(f"shadow{i}", [half, ins])
    shadow, result = train_model(dataset, cfg, device, train_split=train, description=f"shadow {i + 1}")
    best = next((h for h in result.history if h.epoch == result.best_epoch), None)
    acc = round(best.val_acc, 4) if best and best.val_acc is not None else None
    if unlearner is not None and len(ins):
        spec, params = unlearner
        shadow = spec(UnlearnTask(shadow, ins, half, dataset, cfg, device, cfg.seed), params)
    return logit_confidence(predict(shadow, plan.targets, device), plan.targets.labels), len(train), acc


def lira_audit(model: torch.nn.Module, task: Task, options: AuditOptions) -> LiraAudit:
    """A shadow-model likelihood-ratio attack on the requested samples: LiRA, or U-LiRA for an unlearned model.

    Targets are the k requested samples (``task.forget``) plus min(k, n_test) random test samples as
    reference negatives (the audited model never saw them). Each of ``options.deep`` shadow models trains
    with the checkpoint's recorded recipe (``shadow_arch``/``shadow_epochs`` override arch and epochs to
    bound the cost; seeds differ per shadow; the best epoch is kept on val as in training) on a fresh
    random half of the retained training data plus the targets assigned "in" to it: every target is "in"
    for a random floor(N/2) or ceil(N/2) of the shadows and "out" for the rest.

    **U-LiRA** (Hayes et al. 2024, "Inexact Unlearning Needs More Careful Evaluations"): when the audited
    checkpoint was made by an approximate unlearning method, each "in" shadow is then *unlearned* with that
    method and its recorded parameters, forgetting its "in" targets. "In" then means "trained on and
    unlearned", "out" means "never seen", and a likelihood ratio above 1 says the audited model treats the
    sample the way unlearning leaves it rather than the way retraining would: the trace an observer can
    find. Plain **LiRA** (Carlini et al. 2022) is used for an original training run or a retrained model.

    For every target, phi = log(p/(1-p)) of its true class under each shadow gives an "in" and an "out"
    Gaussian (:func:`lira_likelihoods`); LR = N(phi_audited; in) / N(phi_audited; out). TPR at 1% and 0.1%
    FPR (:func:`tpr_at_fpr`) thresholds log LR on the references. Comparing requested with references
    scored through the same shadows cancels any calibration shift of briefly trained shadows.

    Returns:
        Per-sample likelihoods, the rates of LR > 1, their two-sided test, TPR at low FPR and notes.
    """
    # size: one pass that plans, trains the shadows, scores and summarises; each step is one call.
    overrides = {"arch": options.shadow_arch, "epochs": options.shadow_epochs}
    cfg = task.checkpoint.meta.train_config.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    plan = _plan(task, options.deep, options.seed)
    unlearner = _unlearner(task)
    phi_shadow = np.zeros(plan.in_mask.shape)
    sizes, val_acc = [], []
    start = time.perf_counter()
    with progress.track("shadow models", options.deep) as bar:
        for i in range(options.deep):
            shadow_cfg = cfg.model_copy(update={"seed": cfg.seed + 1 + i + 1000 * options.seed})
            phi_shadow[i], size, acc = _shadow(task, plan, i, shadow_cfg, unlearner)
            sizes.append(size)
            val_acc.append(acc)
            bar.advance(1, f"{cfg.arch}, {cfg.epochs} epochs" + ("" if acc is None else f", val acc {acc:.3f}"))
    notes = _notes(task, cfg, unlearner)
    phi = logit_confidence(predict(model, plan.targets, task.device), plan.targets.labels)
    log_lr, fits, mode = lira_likelihoods(phi_shadow, plan.in_mask, phi)
    scores = _Scores(phi, log_lr, fits)
    n_req, m = plan.n_requested, len(plan.targets)
    req_llr, ref_llr = log_lr[:n_req], log_lr[n_req:]
    req_hit, ref_hit = int((req_llr > 0).sum()), int((ref_llr > 0).sum())
    n_ref = m - n_req
    name = sample_namer(task.key, options.show_ids)
    references = plan.targets.subset(list(range(n_req, m)))
    return LiraAudit(
        attack="U-LiRA" if unlearner is not None else "LiRA",
        n_shadows=options.deep,
        shadow_arch=cfg.arch,
        shadow_epochs=cfg.epochs,
        shadow_train_size=float(np.mean(sizes)),
        shadow_val_accuracy=val_acc,
        variance=mode,
        requested=_likelihoods(task.forget, scores, range(n_req), name),
        references=_likelihoods(references, scores, range(n_req, m), lambda sid, j: f"test reference {j}"),
        fraction_lr_above_1_requested=req_hit / n_req,
        fraction_lr_above_1_reference=ref_hit / n_ref,
        gap=req_hit / n_req - ref_hit / n_ref,
        p_value=fisher_p(req_hit, n_req, ref_hit, n_ref),
        auc_requested_vs_reference=_auc(req_llr, ref_llr),
        median_lr_requested=math.exp(float(np.clip(np.median(req_llr), -LOG_LR_CLIP, LOG_LR_CLIP))),
        median_lr_reference=math.exp(float(np.clip(np.median(ref_llr), -LOG_LR_CLIP, LOG_LR_CLIP))),
        mean_log_lr_requested=float(np.clip(req_llr, -LOG_LR_CLIP, LOG_LR_CLIP).mean()),
        tpr_at_fpr=[tpr_at_fpr(req_llr, ref_llr, f) for f in TARGET_FPRS],
        notes=notes,
        seconds=round(time.perf_counter() - start, 2),
    )


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a requested sample's log LR exceeds a reference's), ties half: the Mann-Whitney AUC (scikit-learn)."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    return float(roc_auc_score(y, np.r_[positive, negative]))


def _notes(task: Task, cfg: TrainConfig, unlearner: Any) -> list[str]:
    notes = []
    recorded = task.checkpoint.meta.train_config
    if (cfg.arch, cfg.epochs) != (recorded.arch, recorded.epochs):
        notes.append(
            f"shadows use {cfg.arch} for {cfg.epochs} epochs, the checkpoint {recorded.arch} for {recorded.epochs}: "
            "differently calibrated shadows weaken the attack (comparing with references keeps it fair, not sensitive)"
        )
    if unlearner is not None:
        u = task.checkpoint.meta.unlearning
        notes.append(f"U-LiRA: each 'in' shadow was unlearned with {u.method} and the checkpoint's recorded parameters")
    return notes
