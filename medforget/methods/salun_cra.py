"""``salun-cra``: clinical-risk-aware SalUn. It never teaches that a disease case is healthy.

SalUn relabels every forget sample at random; for a malignant lesion in a binary task that label is
"benign", so the model learns to miss disease. v1 instead pushed disease forget samples to maximum
entropy, which still moves them toward "healthy" (in a binary task, all the way to a coin flip), and
relabelled every healthy forget sample "disease", so the threshold shift depended on the request's mix.

v2 (the default) trains each forget sample toward what a model that never saw it would say. Measured on
the original model's unseen validation samples of the same class, as the logit-scaled confidence ``phi``
(log-odds of the true class):

* ``quantile`` targets (default): a retrain does not make every unseen sample equally unsure: it stays
  confident on easy samples and misses hard ones. So the forget samples of each class are ranked by the
  original's confidence, and the i-th of n is trained toward the (i + 0.5)/n quantile of the unseen
  samples' confidence (a Huber loss on the part above the target, at every step). The forget set
  then looks like unseen data of its class, including the share a retrain gets wrong.
* a disease sample is never pushed below ``positive_floor`` (0: the decision boundary, p = 0.5): at worst
  the model becomes unsure about it, never confident that it is healthy. For a task with several disease
  classes, the confidence is taken against the *other disease classes* only, so any spread stays inside
  the disease classes.
* ``uniform`` (v1's disease target, an ablation): maximum entropy among the disease classes (in a binary
  task with the healthy class too: a coin flip). On BreastMNIST's malignant-heavy requests it leaves the
  withdrawn malignant cases better recognised than a retrain does (missed 14-20% against the retrains'
  22-39%; ``quantile``: 20-34%; ``unlearned_forget_fnr`` in ``docs/results/unlearn-bench-k3/results.csv``), so
  it is not the default.
* ``hinge`` targets (v2's first form): down to the class's median unseen confidence and never below; it
  never produces the misclassifications a retrain makes, so it under-forgets. ``heldout``: cross-entropy to
  the original's average prediction on unseen samples of the class.
* the output bias is frozen (``freeze_output_bias``), so shifting the decision threshold is not a way
  to lower the forget loss, and the retain loss keeps the original class balance (``rebalance_retain``).
* the check that confirms the forget set looks unseen comes half a check interval after the first that
  says so (``confirm_fraction=0.5``; the other methods wait a whole interval): fewer steps spent forgetting past
  the point a retrain would be at. On six random BreastMNIST requests it failed none, where the whole interval
  failed two, and PneumoniaMNIST requests took 16 steps instead of 22; disease-heavy requests were left a little
  less forgotten (docs/results, stop 29).
* the retain anchor (``retain_anchor=0.3``) keeps the retain samples where the original had them on the same
  batch. In a random request the forget samples are like the retained ones, and a retained sample the model is
  sure of gives cross-entropy no gradient: without the anchor, pulling the forget samples down can pull the
  retain set down with them (BreastMNIST random 20%, request 1: retain accuracy 86%, test accuracy 70.5%, where
  the retrains have 100% and 83%). It holds back only a fall in a retained sample's log-odds for its own class
  (``anchor_form="confidence"``; the logit form cost pneumonia-heavy requests their ranking, stops 26-27), and
  only for a request that keeps the training class mix (``anchor_scale="skewed-off"``): when a request
  over-represents a class (its share of the forget set at least :data:`ENRICHED` times its share of training,
  as BreastMNIST's malignant-heavy requests at 2.96), a retrain of what is left moves its whole decision
  function and no hold is right; anchored, those requests stayed too sure of their forgotten images (2 of 4
  failed at stop 30), anchored in the healthy class only 1 of 3 (``depleted-off``), anchored in proportion to
  what the request leaves of each class 1 of 3 (``retained-share``). On six random BreastMNIST requests the
  anchor brought the average gap to the retrains from 11.4 to 3.9 points (fresh exact retrains: 4.0) and the
  failed verdicts from 4 to 1, one a fresh exact retrain of that request fails too; malignant-heavy requests run
  as before (docs/results, stop 32). PneumoniaMNIST's pneumonia-heavy requests (1.08) are anchored: with the
  confidence form all six of its requests were inconclusive at stop 30, but on stop 32's machine pneumonia-heavy
  request 0 fails on test AUROC (0.919 against the retrains' 0.957; without the anchor 0.958). A request of a
  few images is skewed by chance more often (one malignant BreastMNIST image alone: 3.7) and then runs
  unanchored, as every request did before stop 32. The stricter stop (``stop_auc=0.5``) reached the gap target
  on random BreastMNIST requests too, but overshot PneumoniaMNIST's (stop 30); stopping at the calibration's
  level over-forgot (stop 31).

Every choice is a parameter, recorded with the output, so the ablations run from one flag: ``--preset
v1`` (uniform target, random labels for healthy samples, the v1 stopping rule); ``positive_target``,
``negative_target``, ``rebalance_retain``, ``freeze_output_bias``, ``retain_anchor`` one at a time.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.methods._loop import RetainAnchor, confidence, random_labels, uniform_target_loss
from medforget.methods._registry import UnlearnTask, register
from medforget.methods.salun import PUBLISHED, class_counts, masked_loop, retain_class_weights, saliency
from medforget.methods.salun import Params as SalUnParams

ENRICHED = 2.0
"""A request over-represents a class when the class's share of the forget set is at least this multiple of its share
of the training set. BreastMNIST's malignant-heavy requests: 2.96 (10% and 20%); random BreastMNIST requests of 20%:
0.68-1.19 (eight drawn); PneumoniaMNIST's pneumonia-heavy requests: 1.08 (pneumonia is 74% of its training set)."""
IGNORE = -100  # F.cross_entropy's ignore_index: the sample gets no label at all

V1 = {
    "positive_target": "uniform",
    "negative_target": "random-label",
    "freeze_output_bias": False,
    "stop": "accuracy",
    "check_every": 3,
    "confirm_fraction": 1.0,
    "check_samples": 256,
    "lr": 2e-4,
    "retain_anchor": 0.0,
    "saliency_samples": None,
}


class Params(SalUnParams):
    positive_target: Literal["quantile", "hinge", "heldout", "uniform"] = Field(
        "quantile",
        description="Disease forget samples: to the unseen confidence at the same rank (quantile), down to the "
        "median unseen confidence (hinge), to the average unseen prediction (heldout), or to maximum entropy "
        "(uniform, v1)",
    )
    negative_target: Literal["quantile", "hinge", "random-label"] = Field(
        "quantile",
        description="Healthy forget samples: to the unseen confidence at the same rank, down to the median, or a "
        "random other label (v1)",
    )
    positive_floor: float | None = Field(
        0.0,
        description="Lowest confidence (log-odds) a disease forget sample is trained toward: 0 is the decision "
        "boundary, so the model may become unsure but never learns the case is healthy; null: no floor",
    )
    positive_weight: float = Field(1.0, ge=0, description="Weight of the disease forget samples' term")
    lr: float = Field(
        3e-4,
        gt=0,
        description="Learning rate (BreastMNIST, 3 seeds x 2 designs: 3e-4 forgot as well as 2e-4 in about 20% "
        "fewer steps; benchmarks/RESULTS.md)",
    )
    confirm_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="The check that confirms a met check comes this fraction of the check interval later (at least "
        "1 step). 0.5 (1 step on BreastMNIST, 5 on PneumoniaMNIST) trains less past the first crossing than 1: no "
        "failed verdict on six random BreastMNIST requests (two with 1), PneumoniaMNIST a quarter faster; "
        "disease-heavy requests a little less forgotten (benchmarks/RESULTS.md, salun-cra+confirm-full)",
    )
    saliency_samples: int | None = Field(
        256,
        ge=1,
        description="Forget samples the saliency gradient is taken on (a class-stratified draw; null: all, as SalUn "
        "does); the others only go forward, for their targets",
    )
    rebalance_retain: bool = Field(True, description=SalUnParams.model_fields["rebalance_retain"].description)
    freeze_output_bias: bool = Field(
        True, description="Keep the output layer's bias fixed, so the decision threshold cannot be what moves"
    )
    retain_anchor: float = Field(
        0.3,
        ge=0,
        description="Weight of a term keeping the retain samples where the original had them (0: off). It prevents "
        "the damage random BreastMNIST requests suffered without it (test accuracy 65-70% against the retrains' 83% on "
        "one); which requests it applies to is anchor_scale's choice; benchmarks/RESULTS.md",
    )
    anchor_form: Literal["logits", "confidence"] = Field(
        "confidence",
        description="What the retain anchor holds: every logit at the original's (logits; it cost pneumonia-heavy "
        "requests their ranking, AUROC 0.923 against the retrains' 0.958), or only a fall in the true class's "
        "log-odds (confidence: a retained sample may grow surer, and its other logits move freely)",
    )
    anchor_scale: Literal["uniform", "retained-share", "depleted-off", "skewed-off"] = Field(
        "skewed-off",
        description="Which requests and classes the retain anchor holds. skewed-off: every class, unless the request "
        "over-represents a class (its share of the forget set at least ENRICHED = 2 times its share of training), "
        "when a retrain's whole decision function moves and no hold is right: then none. uniform: every class of "
        "every request (malignant-heavy BreastMNIST requests under-forget, 2 of 4 failed). depleted-off: none for "
        "the over-represented class only (1 of 3 failed). retained-share: in proportion to the share of the class's "
        "training samples the request leaves, relative to the overall share (1 of 3 failed with the confidence "
        "form); "
        "benchmarks/RESULTS.md, docs/results stop 32",
    )

    PRESETS: ClassVar[dict] = {"published": {**PUBLISHED, "saliency_samples": None}, "v1": V1}
    SEARCH: ClassVar[dict] = {
        "lr": ("log", 1e-5, 1e-2),
        "epochs": ("int", 1, 10),
        "mask_fraction": ("float", 0.1, 0.9),
        "positive_weight": ("log", 0.1, 10.0),
        "retain_ratio": ("float", 0.5, 4.0),
        "stop_auc": ("float", 0.5, 0.65),
        "confirm_fraction": ("float", 0.1, 1.0),
        "retain_anchor": ("float", 0.0, 1.0),
    }


class _Targets:
    """What a model that never saw a sample says about it: the original's behaviour on unseen validation data."""

    def __init__(self, task: UnlearnTask, forget_logits: torch.Tensor, floor: float | None = None) -> None:
        k, dev = task.num_classes, task.device
        pos = torch.zeros(k, dtype=torch.bool)
        pos[task.positive] = True
        # Compare a disease class only with the other disease classes when there are several.
        self.among = torch.stack(
            [pos if pos[c] and pos.sum() > 1 else torch.ones(k, dtype=torch.bool) for c in range(k)]
        )
        self.among[torch.arange(k), torch.arange(k)] = False
        val = task.dataset.val
        logits = task.original_on("val")
        phi = confidence(logits, val.labels, self.among)
        probs = logits.softmax(1)
        self.level = torch.zeros(k)
        self.soft = torch.full((k, k), 1.0 / k)
        for c in range(k):
            rows = val.labels == c
            if rows.any():
                self.level[c] = phi[rows].median()
                p = probs[rows].mean(0)
                self.soft[c] = p * pos / (p * pos).sum() if pos[c] and pos.sum() > 1 else p
        self.pos, self.level, self.soft, self.among = (
            pos.to(dev),
            self.level.to(dev),
            self.soft.to(dev),
            self.among.to(dev),
        )
        self.rank_target = self._quantiles(task, forget_logits, phi, floor)

    def _quantiles(
        self, task: UnlearnTask, forget_logits: torch.Tensor, val_phi: torch.Tensor, floor: float | None
    ) -> torch.Tensor:
        """Per forget sample: the unseen confidence at its rank within its class (floored for disease)."""
        forget, val = task.forget, task.dataset.val
        phi = confidence(forget_logits, forget.labels, self.among.cpu())
        target = phi.clone()
        for c in forget.labels.unique().tolist():
            rows = torch.nonzero(forget.labels == c).squeeze(1)
            ref = val_phi[val.labels == c]
            if not len(ref):
                continue  # no unseen sample of the class: nothing to aim at, the sample keeps its confidence
            ranks = phi[rows].argsort().argsort().double()
            q = torch.quantile(ref.double(), (ranks + 0.5) / len(rows)).float()
            if floor is not None and bool(self.pos[c]):
                q = q.clamp(min=floor)
            target[rows] = q
        return target.to(task.device)

    def quantile(self, logits: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Per sample: Huber distance of its confidence *above* its rank's unseen confidence (0 at or below).

        One-sided at every step, not only for the samples that started above: training on the retain set
        raises the confidence of every sample of a class, and a forget sample that drifts back above its
        target must be pulled down again (with a pull only for those that began above, the forget samples
        of a malignant-heavy request ended more confident than unseen ones: forget AUC 0.69 against the
        retrains' 0.45).
        """
        phi = confidence(logits, labels, self.among)
        target = self.rank_target[rows]
        return F.huber_loss(torch.maximum(phi, target), target, reduction="none")

    def hinge(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per sample: how far its confidence exceeds the unseen level of its class (0 once it does not)."""
        return F.relu(confidence(logits, labels, self.among) - self.level[labels])

    def heldout(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return -(self.soft[labels] * F.log_softmax(logits, 1)).sum(1)

    def uniform(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy to the uniform distribution over the sample's class and the classes it is compared with.

        In a binary task that is both classes (a coin flip, as v1 did); with several disease classes only those,
        so no probability is sent to a healthy class.
        """
        allowed = self.among[labels].clone()
        allowed[torch.arange(len(labels)), labels] = True
        if bool(allowed.all()):
            return uniform_target_loss(logits)
        return -(F.log_softmax(logits, 1) * allowed).sum(1) / allowed.sum(1)


def _term(kind: str, targets: _Targets, lf: torch.Tensor, y: torch.Tensor, yf: torch.Tensor, rows: torch.Tensor):
    """Per-sample forget loss of one kind of target."""
    if kind == "quantile":
        return targets.quantile(lf, y, rows)
    if kind == "hinge":
        return targets.hinge(lf, y)
    if kind == "heldout":
        return targets.heldout(lf, y)
    if kind == "uniform":
        return targets.uniform(lf, y)
    return F.cross_entropy(lf, yf, reduction="none")  # random-label


def _forget_term(
    p: Params, targets: _Targets, lf: torch.Tensor, y: torch.Tensor, yf: torch.Tensor, rows: torch.Tensor
) -> torch.Tensor:
    """Summed loss of a batch's forget samples (true labels ``y``, training labels ``yf``, forget ``rows``)."""
    pos = targets.pos[y]
    total = lf.new_zeros(())
    if pos.any():
        total = total + p.positive_weight * _term(p.positive_target, targets, lf[pos], y[pos], yf[pos], rows[pos]).sum()
    if (~pos).any():
        total = total + _term(p.negative_target, targets, lf[~pos], y[~pos], yf[~pos], rows[~pos]).sum()
    return total


@register(
    "salun-cra", Params, summary="SalUn that never teaches disease is healthy: forget toward unseen-level confidence"
)
def salun_cra(task: UnlearnTask, p: Params) -> nn.Module:
    gen = torch.Generator().manual_seed(task.seed)
    y_true = task.forget.labels.to(task.device)
    relabel = random_labels(task.forget.labels, task.num_classes, gen, p.label_draw).to(task.device)
    # its gradient pass (and the forward pass of the samples not in it) gives the original's forget logits
    found = saliency(task, p.mask_fraction, p.saliency_samples)
    targets = _Targets(task, found.forget_logits, p.positive_floor)
    weight = retain_class_weights(task).to(task.device) if p.rebalance_retain else None

    def objective(lf, yf, rows, lr, yr):
        retain = F.cross_entropy(lr, yr, weight=weight, reduction="sum")
        return (retain + _forget_term(p, targets, lf, y_true[rows], yf, rows)) / (len(lf) + len(lr))

    anchor = RetainAnchor(anchor_weights(task, p), p.anchor_form)
    return masked_loop(task, p, objective, relabel, "salun-cra", found, anchor)


def anchor_weights(task: UnlearnTask, p: Params) -> torch.Tensor:
    """The retain anchor's weight per class: ``retain_anchor``, for the classes and requests ``anchor_scale`` holds."""
    weight = torch.full((task.num_classes,), p.retain_anchor)
    if p.anchor_scale == "uniform":
        return weight
    n_retain, n_train = class_counts(task)
    if p.anchor_scale == "retained-share":
        share = (n_retain / n_train.clamp_min(1)) / (n_retain.sum() / n_train.sum())
        return weight * share.clamp(max=1.0)
    over = enrichment(n_train - n_retain, n_train) >= ENRICHED
    return weight * (~over if p.anchor_scale == "depleted-off" else not bool(over.any()))


def enrichment(n_forget: torch.Tensor, n_train: torch.Tensor) -> torch.Tensor:
    """Per class: its share of the forget set over its share of the training set (1: as a random request)."""
    forget_share = n_forget / n_forget.sum().clamp_min(1)
    return forget_share / (n_train / n_train.sum()).clamp_min(1e-12)
