"""``neggrad+``: gradient descent on the retain set and ascent on the forget set.

NegGrad+ (Kurmanji et al. 2023, SCRUB paper) weights the two: ``alpha * CE(retain) -
(1 - alpha) * CE(forget)``. Pure ascent diverges; the retain term keeps the model useful.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.methods import UnlearnTask, register
from medforget.methods._loop import PairedParams, forget_retain_loop


class Params(PairedParams):
    alpha: float = Field(0.95, ge=0, le=1, description="Weight of the retain (descent) term; 1-alpha for ascent")


@register("neggrad+", Params, summary="Descent on retain, ascent on forget (alpha-weighted)")
def neggrad_plus(task: UnlearnTask, p: Params) -> nn.Module:
    def objective(lf, yf, rows, lr, yr):
        return p.alpha * F.cross_entropy(lr, yr) - (1 - p.alpha) * F.cross_entropy(lf, yf)

    return forget_retain_loop(task, p, objective, description="neggrad+")
