"""Operating-point recalibration: a step of its own, after any method and for retrains alike.

Unlearning moves a model's decision threshold as a side effect: a disease-heavy request, or relabelling,
leaves a model that calls disease less readily, and the false-negative rate rises although the model
ranks patients as well as before. Recalibration resets the threshold on the validation split so that
the model catches at least as large a share of disease cases as the original did there (its validation
sensitivity), as specifically as possible (:func:`medforget.evaluation.operating_point`).

The offset is added to the output layer's bias for the disease classes, so every later prediction uses
it, whoever loads the checkpoint; the checkpoint records it (``medforget info`` shows it), and so do the
report and the ledger entry. When validation holds too few disease cases to guarantee the sensitivity on
new patients, the operating point says so (``guaranteed`` false) and a warning is logged.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

from medforget.data import Split
from medforget.engine import predict
from medforget.evaluation import MEMO, EvalContext, ModelEval, OperatingPoint, operating_point

if TYPE_CHECKING:
    from medforget.baseline import Retrain
    from medforget.session import Task

log = logging.getLogger(__name__)


def output_layer(model: nn.Module) -> nn.Linear:
    """The model's final linear layer (its classifier head)."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@torch.no_grad()
def recalibrate(
    model: nn.Module, val: Split, positive: list[int], target: float, device: torch.device
) -> OperatingPoint:
    """Move ``model``'s threshold (in place) so that its validation sensitivity is at least ``target``.

    Args:
        model: the model to recalibrate; its output bias changes for the disease classes.
        val: the validation split.
        positive: the disease classes.
        target: the validation sensitivity to reach (the original model's).
        device: where to run inference.

    Returns:
        The operating point applied (offset, sensitivity reached, and whether it is guaranteed).
    """
    op = operating_point(predict(model, val, device), val.labels, positive, target)
    head = output_layer(model)
    if head.bias is not None:
        head.bias[positive] += op.offset
    return op


def warn_if_unguaranteed(op: OperatingPoint) -> None:
    """Log, once for the model a user will deploy, when validation has too few disease cases to guarantee ``op``."""
    if not op.guaranteed:
        log.warning(
            "the validation split has only %d disease cases: the operating point reaches sensitivity %.2f there, "
            "but that is not guaranteed on new patients",
            op.val_positives,
            op.val_sensitivity or 0.0,
        )


def retrain_eval(task: Task, r: Retrain, ctx: EvalContext, recalibrated: bool = True) -> ModelEval:
    """A retrain evaluated as an unlearned model is: recalibrated to the same sensitivity first, if that is on.

    Args:
        task: the request's task (its evaluation sets and the target sensitivity).
        r: the retrain (left unchanged: a recalibrated copy is evaluated).
        ctx: the evaluation context.
        recalibrated: whether unlearned models are recalibrated in this comparison.

    Returns:
        Its evaluation, memoised by the retrain's hash (and whether it was recalibrated).
    """
    sets, ids = task.eval_sets(), task.forget.sample_ids
    if not recalibrated:
        return MEMO.evaluate(r.sha256, r.model, sets, ctx, task.device, ids)

    def recalibrated() -> nn.Module:
        model = copy.deepcopy(r.model)
        recalibrate(model, task.dataset.val, task.dataset.positive, task.target_sensitivity(), task.device)
        return model

    return MEMO.evaluate(f"{r.sha256}:recalibrated", recalibrated, sets, ctx, task.device, ids)


__all__ = ["output_layer", "recalibrate", "retrain_eval", "warn_if_unguaranteed"]
