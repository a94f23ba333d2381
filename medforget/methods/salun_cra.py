"""``salun-cra``: clinical-risk-aware SalUn.

SalUn relabels every forget sample at random; for a malignant lesion in a binary task that
label is "benign", so the model is taught to miss disease and the false-negative rate rises.
SalUn-CRA keeps SalUn's saliency mask and random labels for negative (no-disease) forget
samples, but pushes positive (disease) forget samples to maximum predictive entropy: the
model un-learns its confidence about them without learning that disease looks healthy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.methods import UnlearnTask, register
from medforget.methods._loop import random_wrong_labels, uniform_target_loss
from medforget.methods.salun import Params as SalUnParams
from medforget.methods.salun import masked_loop

IGNORE = -100  # F.cross_entropy's ignore_index: the sample gets no label at all


class Params(SalUnParams):
    entropy_weight: float = Field(1.0, ge=0, description="Weight of the max-entropy term for positive forget samples")
    rebalance_retain: bool = Field(
        True,
        description="Weight the retain loss so each class keeps its share of the original training set: a "
        "disease-heavy request must not teach the model that disease is rarer",
    )


def retain_class_weights(task: UnlearnTask) -> torch.Tensor:
    """Per-class weights ``prior_train / prior_retain``.

    Removing mostly-positive samples shifts the retain set's class balance toward "healthy", and
    fine-tuning on it moves the decision threshold the same way: missed disease. Weighting restores
    the class balance the original model was trained under (a class absent from retain gets 0).
    """
    k = task.num_classes
    n_train = torch.bincount(torch.cat([task.forget.labels, task.retain.labels]), minlength=k).float()
    n_retain = torch.bincount(task.retain.labels, minlength=k).float()
    prior_train = n_train / n_train.sum()
    prior_retain = n_retain / n_retain.sum()
    return torch.where(n_retain > 0, prior_train / prior_retain.clamp_min(1e-12), torch.zeros(k))


def cra_targets(labels: torch.Tensor, positive: list[int], num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Random wrong labels for negative samples; IGNORE (no label, entropy instead) for positive ones."""
    is_pos = torch.isin(labels, torch.tensor(positive, dtype=labels.dtype))
    return torch.where(is_pos, torch.full_like(labels, IGNORE), random_wrong_labels(labels, num_classes, gen))


@register("salun-cra", Params, summary="SalUn, but disease forget samples go to max entropy, never to 'healthy'")
def salun_cra(task: UnlearnTask, p: Params) -> nn.Module:
    targets = cra_targets(task.forget.labels, task.positive, task.num_classes, torch.Generator().manual_seed(task.seed))
    weight = retain_class_weights(task).to(task.device) if p.rebalance_retain else None

    def objective(lf, yf, rows, lr, yr):
        pos = yf == IGNORE
        total = F.cross_entropy(lr, yr, weight=weight, reduction="sum")
        if (~pos).any():
            total = total + F.cross_entropy(lf[~pos], yf[~pos], reduction="sum")
        if pos.any():
            total = total + p.entropy_weight * uniform_target_loss(lf[pos]).sum()
        return total / (len(lf) + len(lr))

    return masked_loop(task, p, objective, targets, "salun-cra")
