"""``salun``: saliency unlearning (Fan et al., ICLR 2024).

Only the weights most responsible for the forget samples are updated: a mask keeps the
top ``mask_fraction`` of weights by the magnitude of the forget-loss gradient (ranked once,
globally, in O(n) with ``kthvalue``), and random-labelling runs with updates restricted to
it. Masked-out weights stay bit-identical: their gradients are zeroed (so optimizer state
never moves) and any drift (e.g. weight decay) is undone after every step. ``published`` is the
paper's recipe (the authors' repository, OPTML-Group/Unlearn-Saliency): half the weights, SGD at
learning rate 0.013, 10 epochs over forget and retain together, no early stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.data import batches
from medforget.engine import compute_clock
from medforget.methods._loop import PairedParams, RetainAnchor, forget_retain_loop, random_labels
from medforget.methods._registry import UnlearnTask, register
from medforget.methods._stop import PROBE_SEED_OFFSET, stratified_rows
from medforget.methods.random_label import PUBLISHED


class Params(PairedParams):
    mask_fraction: float = Field(0.5, gt=0, le=1, description="Fraction of weights allowed to change")
    label_draw: Literal["wrong", "uniform"] = Field(
        "wrong", description="wrong: a random *other* class; uniform: any class, as the reference code draws"
    )
    saliency_samples: int | None = Field(
        None,
        ge=1,
        description="Forget samples the saliency gradient is taken on (a class-stratified draw; null: all, as "
        "the reference does)",
    )
    rebalance_retain: bool = Field(
        False,
        description="Weight the retain loss so each class keeps its share of the original training set: a "
        "disease-heavy request must not teach the model that disease is rarer",
    )

    PRESETS: ClassVar[dict] = {"published": PUBLISHED}
    SEARCH: ClassVar[dict] = {
        "lr": ("log", 1e-5, 1e-2),
        "epochs": ("int", 1, 10),
        "mask_fraction": ("float", 0.1, 0.9),
        "retain_ratio": ("float", 0.5, 4.0),
    }


def class_counts(task: UnlearnTask) -> tuple[torch.Tensor, torch.Tensor]:
    """Images per class in the retain set and in the whole training set (retain + forget), as floats."""
    k = task.num_classes
    n_retain = torch.bincount(task.retain.labels, minlength=k).float()
    return n_retain, n_retain + torch.bincount(task.forget.labels, minlength=k).float()


def retain_class_weights(task: UnlearnTask) -> torch.Tensor:
    """Per-class weights ``prior_train / prior_retain`` (0 for a class absent from retain).

    Removing mostly-positive samples shifts the retain set's class balance toward "healthy", and
    fine-tuning on it moves the decision threshold the same way: missed disease.
    """
    n_retain, n_train = class_counts(task)
    prior_train = n_train / n_train.sum()
    prior_retain = n_retain / n_retain.sum()
    return torch.where(n_retain > 0, prior_train / prior_retain.clamp_min(1e-12), torch.zeros_like(n_retain))


@dataclass
class Saliency:
    """SalUn's mask, and the logits of the model on the forget set that its gradient pass produced on the way."""

    mask: dict[str, torch.Tensor]
    forget_logits: torch.Tensor


def saliency(task: UnlearnTask, fraction: float, samples: int | None = None, batch_size: int = 128) -> Saliency:
    """Boolean mask per parameter: True for the globally top ``fraction`` of |d forget-loss / d w|.

    Gradients are taken in eval mode so computing the mask leaves batch-norm statistics untouched; the
    forward pass's logits (the model before unlearning, on every forget sample in row order) are kept, so a
    method that needs them does not run the forget set through the model again. ``samples`` caps the
    forget samples the gradient is taken on (a class-stratified draw, seeded apart from the batch order);
    the others only go forward, at about a third of the cost, or not at all when the original's logits on
    the forget set were recorded (``task.original_logits``).
    """
    model, dev = task.model, task.device
    model.eval()
    model.zero_grad(set_to_none=True)
    n_f = len(task.forget)
    graded = stratified_rows(task.forget.labels, samples or n_f, task.seed + PROBE_SEED_OFFSET)
    recorded = task.original_logits.get("forget")
    rest = [] if recorded is not None else sorted(set(range(n_f)) - set(graded))
    logits = torch.empty(n_f, task.num_classes) if recorded is None else recorded.clone()
    for rows, grad in ((graded, True), (rest, False)):
        if not rows:
            continue
        part = task.forget if len(rows) == n_f else task.forget.subset(rows)
        where = torch.as_tensor(rows)
        with torch.set_grad_enabled(grad):
            for x, y, r in batches(
                part.images.to(dev), part.labels.to(dev), batch_size, channels_last=dev.type == "cpu"
            ):
                with compute_clock.running(dev):
                    out = model(x)
                    if grad:
                        F.cross_entropy(out, y, reduction="sum").backward()
                logits[where[r.cpu()]] = out.detach().float().cpu()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = [p.grad.abs().flatten() if p.grad is not None else torch.zeros(p.numel(), device=dev) for _, p in named]
    flat = torch.cat(grads)
    keep = max(1, round(fraction * flat.numel()))
    # the same order statistic as torch.kthvalue, in a tenth of its time (benchmarks/saliency_threshold.py)
    k = flat.numel() - keep
    threshold = torch.as_tensor(np.partition(flat.float().cpu().numpy(), k)[k]).to(dev)
    model.zero_grad(set_to_none=True)
    mask = {n: (g >= threshold).view_as(p) for (n, p), g in zip(named, grads, strict=True)}
    return Saliency(mask, logits)


def _restorer(named: dict[str, nn.Parameter], mask: dict[str, torch.Tensor]) -> Callable[[], None]:
    """A function that puts every masked-out weight back to its value now."""
    frozen = {n: named[n].detach().clone() for n in mask}

    @torch.no_grad()
    def restore() -> None:
        for n, m in mask.items():
            named[n].copy_(torch.where(m, named[n], frozen[n]))

    return restore


def masked_loop(
    task: UnlearnTask,
    p: Params,
    objective,
    forget_labels: torch.Tensor | None,
    name: str,
    found: Saliency | None = None,
    retain_anchor: RetainAnchor | None = None,
) -> nn.Module:
    """Run ``forget_retain_loop`` with updates confined to the saliency mask (``found``, or computed now)."""
    mask = (found or saliency(task, p.mask_fraction, p.saliency_samples)).mask
    named = dict(task.model.named_parameters())
    hooks = [named[n].register_hook(lambda g, m=m: g * m) for n, m in mask.items()]
    # A zero gradient leaves Adam's and SGD's state, and so the weight, exactly unchanged; only weight decay
    # (added inside the optimizer step, after the hooks) moves a masked-out weight, and then it is put back.
    restore = _restorer(named, mask) if p.weight_decay > 0 else None
    try:
        return forget_retain_loop(
            task, p, objective, forget_labels, after_step=restore, description=name, retain_anchor=retain_anchor
        )
    finally:
        for h in hooks:
            h.remove()


@register("salun", Params, summary="Saliency-masked random labelling (SalUn)")
def salun(task: UnlearnTask, p: Params) -> nn.Module:
    labels = random_labels(task.forget.labels, task.num_classes, torch.Generator().manual_seed(task.seed), p.label_draw)
    weight = retain_class_weights(task).to(task.device) if p.rebalance_retain else None

    def objective(lf, yf, rows, lr, yr):
        total = F.cross_entropy(lr, yr, weight=weight, reduction="sum") + F.cross_entropy(lf, yf, reduction="sum")
        return total / (len(lf) + len(lr))

    return masked_loop(task, p, objective, labels, "salun")
