"""``finetune`` (FT): keep training on the retain set only.

Relies on catastrophic forgetting: with no further signal from the forget samples their
influence fades. Cheap and safe for accuracy, but often forgets little (Warnecke et al. 2023;
Jia et al. 2023 use it as the simplest baseline).
"""

from __future__ import annotations

from pydantic import Field
from torch import nn

from medforget.engine import fit
from medforget.methods import UnlearnTask, register
from medforget.methods._loop import OptimParams, retain_cfg


class Params(OptimParams):
    epochs: int = Field(2, ge=1, description="Passes over the retain set")
    lr: float = Field(1e-4, gt=0)


@register("finetune", Params, summary="Fine-tune on the retain set (FT)")
def finetune(task: UnlearnTask, p: Params) -> nn.Module:
    fit(
        task.model,
        task.retain,
        retain_cfg(task, p),
        task.device,
        description="finetune",
        show_progress=task.show_progress,
    )
    return task.model
