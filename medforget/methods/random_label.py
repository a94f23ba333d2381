"""``random-label`` (RL): teach the model wrong labels for the forget samples.

Each forget sample gets a random label *different from its true one* (the reference
implementation draws uniformly, so in a binary task half the "random" labels are the true
label); the model is then fine-tuned on the relabeled forget samples together with retain
samples (Golatkar et al. 2020; Fan et al. 2024 use it inside SalUn).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.methods._loop import PairedParams, forget_retain_loop, random_labels
from medforget.methods._registry import UnlearnTask, register

PUBLISHED = {
    "optimizer": "sgd",
    "lr": 0.013,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "epochs": 10,
    "retain_per_epoch": "all",
    "stop": "none",
}


class Params(PairedParams):
    label_draw: Literal["wrong", "uniform"] = Field(
        "wrong", description="wrong: a random *other* class; uniform: any class, as the reference code draws"
    )

    PRESETS: ClassVar[dict] = {"published": PUBLISHED}
    SEARCH: ClassVar[dict] = {"lr": ("log", 1e-5, 1e-2), "epochs": ("int", 1, 10), "retain_ratio": ("float", 0.5, 4.0)}


def mixed_ce(lf: torch.Tensor, yf: torch.Tensor, lr: torch.Tensor, yr: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the union of the forget and retain part of a batch."""
    return F.cross_entropy(torch.cat([lf, lr]), torch.cat([yf, yr]))


@register("random-label", Params, summary="Random wrong labels on forget samples, fine-tune with retain (RL)")
def random_label(task: UnlearnTask, p: Params) -> nn.Module:
    gen = torch.Generator().manual_seed(task.seed)
    labels = random_labels(task.forget.labels, task.num_classes, gen, p.label_draw)
    return forget_retain_loop(
        task,
        p,
        lambda lf, yf, rows, lr, yr: mixed_ce(lf, yf, lr, yr),
        forget_labels=labels,
        description="random-label",
    )
