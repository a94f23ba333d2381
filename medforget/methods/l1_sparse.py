"""``l1-sparse``: fine-tune on the retain set with a decaying L1 penalty (Jia et al., NeurIPS 2023).

Sparsity makes unlearning easier: pruning-like pressure removes weights that only served
the forget samples. The penalty ``gamma_t * ||w||_1`` decays linearly to zero over the run,
so the last steps recover accuracy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.engine import fit
from medforget.methods import UnlearnTask, register
from medforget.methods._loop import OptimParams, retain_cfg


class Params(OptimParams):
    epochs: int = Field(2, ge=1, description="Passes over the retain set")
    lr: float = Field(1e-4, gt=0)
    gamma: float = Field(5e-5, ge=0, description="Initial L1 weight, decayed linearly to 0")


@register("l1-sparse", Params, summary="Fine-tune on retain with a decaying L1 penalty")
def l1_sparse(task: UnlearnTask, p: Params) -> nn.Module:
    cfg = retain_cfg(task, p)
    total = p.epochs * -(-len(task.retain) // p.batch_size)
    weights = [w for n, w in task.model.named_parameters() if w.ndim > 1]
    step = {"i": 0}

    def objective(model, x, y, rows):
        logits = model(x)
        gamma = p.gamma * max(0.0, 1 - step["i"] / total)
        step["i"] += 1
        l1 = torch.stack([w.abs().sum() for w in weights]).sum()
        return F.cross_entropy(logits, y) + gamma * l1, logits

    fit(
        task.model,
        task.retain,
        cfg,
        task.device,
        step=objective,
        description="l1-sparse",
        show_progress=task.show_progress,
    )
    return task.model
