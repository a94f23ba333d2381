"""``ssd``: selective synaptic dampening (Foster et al., AAAI 2024). No training epochs.

Parameters far more important to the forget set than to the training data as a whole
(diagonal Fisher information, ``I_forget > alpha * I_train``) are shrunk in proportion:
``w <- w * min(lambda * I_train / I_forget, 1)``. One gradient pass over the data, no
hyper-parameter-sensitive optimisation, so it is fast, but the dampening is coarse. The defaults are
the paper's (alpha 10, lambda 1), so ``published`` is the same setting.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.data import Split, batches, concat_splits
from medforget.engine import compute_clock
from medforget.methods._registry import MethodParams, UnlearnTask, register


class Params(MethodParams):
    alpha: float = Field(10.0, gt=0, description="Selection: dampen where I_forget > alpha * I_train")
    dampening: float = Field(1.0, gt=0, description="lambda: dampening constant")
    batch_size: int = Field(32, ge=1, description="Batch size of the importance (Fisher) estimate")

    PRESETS: ClassVar[dict] = {"published": {}}
    SEARCH: ClassVar[dict] = {"alpha": ("log", 1.0, 100.0), "dampening": ("float", 0.1, 2.0)}


def importance(model: nn.Module, split: Split, device: torch.device, batch_size: int) -> dict[str, torch.Tensor]:
    """Diagonal Fisher estimate: mean over batches of the squared gradient of the loss."""
    imp = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    n_batches = 0
    for x, y, _ in batches(
        split.images.to(device), split.labels.to(device), batch_size, channels_last=device.type == "cpu"
    ):
        with compute_clock.running(device):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            for n, p in model.named_parameters():
                if p.grad is not None:
                    imp[n] += p.grad.detach() ** 2
        n_batches += 1
    model.zero_grad(set_to_none=True)
    return {n: v / max(n_batches, 1) for n, v in imp.items()}


@register("ssd", Params, summary="Dampen weights specialised to the forget set (SSD), no training")
def ssd(task: UnlearnTask, p: Params) -> nn.Module:
    model = task.model.eval()  # eval: the Fisher passes must not move batch-norm statistics
    full = concat_splits("train", [task.retain, task.forget])
    i_train = importance(model, full, task.device, p.batch_size)
    i_forget = importance(model, task.forget, task.device, p.batch_size)
    with torch.no_grad():
        for n, w in model.named_parameters():
            selected = i_forget[n] > p.alpha * i_train[n]
            factor = (p.dampening * i_train[n] / i_forget[n].clamp_min(1e-30)).clamp(max=1.0)
            w.mul_(torch.where(selected, factor, torch.ones_like(factor)))
    return model
