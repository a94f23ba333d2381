"""``neggrad+``: gradient descent on the retain set and ascent on the forget set.

NegGrad+ (Kurmanji et al. 2023, SCRUB paper) weights the two: ``alpha * CE(retain) -
(1 - alpha) * CE(forget)``. Pure ascent diverges; the retain term keeps the model useful.
``published``: SGD, learning rate 0.01, 5 epochs over forget and retain together, no early stop
(the NegGrad+ baseline of the SCRUB paper's small-scale experiments).
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.methods._loop import PairedParams, forget_retain_loop
from medforget.methods._registry import UnlearnTask, register


class Params(PairedParams):
    alpha: float = Field(0.95, ge=0, le=1, description="Weight of the retain (descent) term; 1-alpha for ascent")

    PRESETS: ClassVar[dict] = {
        "published": {
            "optimizer": "sgd",
            "lr": 0.01,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "epochs": 5,
            "retain_per_epoch": "all",
            "stop": "none",
        }
    }
    SEARCH: ClassVar[dict] = {"lr": ("log", 1e-5, 1e-2), "epochs": ("int", 1, 8), "alpha": ("float", 0.5, 0.999)}


@register("neggrad+", Params, summary="Descent on retain, ascent on forget (alpha-weighted)")
def neggrad_plus(task: UnlearnTask, p: Params) -> nn.Module:
    def objective(lf, yf, rows, lr, yr):
        return p.alpha * F.cross_entropy(lr, yr) - (1 - p.alpha) * F.cross_entropy(lf, yf)

    return forget_retain_loop(task, p, objective, description="neggrad+")
