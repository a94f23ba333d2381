"""``l1-sparse``: fine-tune on the retain set with a decaying L1 penalty (Jia et al., NeurIPS 2023).

Sparsity makes unlearning easier: pruning-like pressure removes weights that only served the forget
samples. The penalty ``gamma_t * ||w||_1`` decays linearly to zero over the run, so the last steps
recover accuracy. ``published``: SGD, learning rate 0.01, 10 epochs, gamma 5e-4 (Jia et al.'s setting).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.methods._loop import OptimParams, retain_loop
from medforget.methods._registry import UnlearnTask, register
from medforget.methods._stop import StopParams


class Params(OptimParams, StopParams):
    epochs: int = Field(2, ge=1, description="Passes over the retain set")
    lr: float = Field(1e-4, gt=0)
    gamma: float = Field(5e-5, ge=0, description="Initial L1 weight, decayed linearly to 0")

    PRESETS: ClassVar[dict] = {
        "published": {
            "optimizer": "sgd",
            "lr": 0.01,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "epochs": 10,
            "gamma": 5e-4,
            "stop": "none",
        }
    }
    SEARCH: ClassVar[dict] = {"lr": ("log", 1e-5, 1e-2), "epochs": ("int", 1, 10), "gamma": ("log", 1e-6, 1e-3)}


@register("l1-sparse", Params, summary="Fine-tune on retain with a decaying L1 penalty")
def l1_sparse(task: UnlearnTask, p: Params) -> nn.Module:
    total = p.epochs * math.ceil(len(task.retain) / p.batch_size)
    weights = [w for w in task.model.parameters() if w.ndim > 1]
    step = {"i": 0}

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gamma = p.gamma * max(0.0, 1 - step["i"] / total)
        step["i"] += 1
        return F.cross_entropy(logits, y) + gamma * torch.stack([w.abs().sum() for w in weights]).sum()

    return retain_loop(task, p, loss_fn, p)
