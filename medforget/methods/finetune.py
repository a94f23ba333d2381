"""``finetune`` (FT): keep training on the retain set only.

Relies on catastrophic forgetting: with no further signal from the forget samples their influence
fades. Cheap and safe for accuracy, but often forgets little. The ``published`` preset is the recipe of
the sparsity-unlearning and SalUn benchmarks (Jia et al., NeurIPS 2023; Fan et al., ICLR 2024): SGD,
learning rate 0.01, 10 epochs over the retain set, no early stop.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.methods._loop import OptimParams, retain_loop
from medforget.methods._registry import UnlearnTask, register
from medforget.methods._stop import StopParams

PUBLISHED = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "epochs": 10, "stop": "none"}


class Params(OptimParams, StopParams):
    epochs: int = Field(2, ge=1, description="Passes over the retain set")
    lr: float = Field(1e-4, gt=0)

    PRESETS: ClassVar[dict] = {"published": PUBLISHED}
    SEARCH: ClassVar[dict] = {"lr": ("log", 1e-5, 1e-2), "epochs": ("int", 1, 10)}


@register("finetune", Params, summary="Fine-tune on the retain set (FT)")
def finetune(task: UnlearnTask, p: Params) -> nn.Module:
    return retain_loop(task, p, F.cross_entropy, p)
