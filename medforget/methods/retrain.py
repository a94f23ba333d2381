"""``retrain``: exact unlearning, the gold standard.

Train from scratch on the retain set with the checkpoint's recorded training recipe. The
result never saw a forget sample, by construction; every approximate method is judged by
how close it comes to this model, and how much cheaper it is.
"""

from __future__ import annotations

from pydantic import Field
from torch import nn

from medforget.engine import build_model, fit
from medforget.methods._registry import MethodParams, UnlearnTask, register


class Params(MethodParams):
    epochs: int | None = Field(None, ge=1, description="Override the recorded number of epochs")
    seed: int | None = Field(None, description="Override the recorded seed (default: the original run's)")


@register("retrain", Params, summary="Exact unlearning: train from scratch on the retain set (gold standard)")
def retrain(task: UnlearnTask, p: Params) -> nn.Module:
    cfg = task.train_config
    cfg = cfg.model_copy(update={k: v for k, v in {"epochs": p.epochs, "seed": p.seed}.items() if v is not None})
    model = build_model(cfg, task.dataset, task.device)
    fit(
        model,
        task.retain,
        cfg,
        task.device,
        val=task.dataset.val,
        description="retrain",
    )
    return model
