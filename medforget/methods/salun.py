"""``salun``: saliency unlearning (Fan et al., ICLR 2024).

Only the weights most responsible for the forget samples are updated: a mask keeps the
top ``mask_fraction`` of weights by the magnitude of the forget-loss gradient (ranked once,
globally, in O(n) with ``kthvalue``), and random-labelling runs with updates restricted to
it. Masked-out weights stay bit-identical: their gradients are zeroed (so optimizer state
never moves) and any drift (e.g. weight decay) is undone after every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.data import batches
from medforget.engine import compute_clock
from medforget.methods import UnlearnTask, register
from medforget.methods._loop import PairedParams, forget_retain_loop, random_wrong_labels
from medforget.methods.random_label import mixed_ce


class Params(PairedParams):
    mask_fraction: float = Field(0.5, gt=0, le=1, description="Fraction of weights allowed to change")


def saliency_mask(task: UnlearnTask, fraction: float, batch_size: int = 128) -> dict[str, torch.Tensor]:
    """Boolean mask per parameter: True for the globally top ``fraction`` of |d forget-loss / d w|.

    Gradients are taken in eval mode so computing the mask leaves batch-norm statistics untouched.
    """
    model = task.model
    model.eval()
    model.zero_grad(set_to_none=True)
    dev = task.device
    for x, y, _ in batches(
        task.forget.images.to(dev), task.forget.labels.to(dev), batch_size, channels_last=dev.type == "cpu"
    ):
        with compute_clock.running(dev):
            F.cross_entropy(model(x), y, reduction="sum").backward()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = [p.grad.abs().flatten() if p.grad is not None else torch.zeros(p.numel(), device=dev) for _, p in named]
    flat = torch.cat(grads)
    keep = max(1, round(fraction * flat.numel()))
    threshold = torch.kthvalue(flat.float().cpu(), flat.numel() - keep + 1).values.to(dev)
    model.zero_grad(set_to_none=True)
    return {n: (g >= threshold).view_as(p) for (n, p), g in zip(named, grads, strict=True)}


def masked_loop(task: UnlearnTask, p: Params, objective, forget_labels: torch.Tensor | None, name: str) -> nn.Module:
    """Run ``forget_retain_loop`` with updates confined to the saliency mask."""
    mask = saliency_mask(task, p.mask_fraction)
    named = dict(task.model.named_parameters())
    frozen = {n: named[n].detach().clone() for n in mask}
    hooks = [named[n].register_hook(lambda g, m=m: g * m) for n, m in mask.items()]

    @torch.no_grad()
    def restore() -> None:
        for n, m in mask.items():
            named[n].copy_(torch.where(m, named[n], frozen[n]))

    try:
        return forget_retain_loop(task, p, objective, forget_labels=forget_labels, after_step=restore, description=name)
    finally:
        for h in hooks:
            h.remove()


@register("salun", Params, summary="Saliency-masked random labelling (SalUn)")
def salun(task: UnlearnTask, p: Params) -> nn.Module:
    labels = random_wrong_labels(task.forget.labels, task.num_classes, torch.Generator().manual_seed(task.seed))
    return masked_loop(task, p, lambda lf, yf, rows, lr, yr: mixed_ce(lf, yf, lr, yr), labels, "salun")
