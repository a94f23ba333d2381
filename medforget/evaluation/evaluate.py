"""One model's evaluation on the retain, forget and test sets, from one inference pass per set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field, PrivateAttr

from medforget.data import Split
from medforget.engine import predict
from medforget.evaluation.calibration import (
    OperatingPoint,
    apply_offset,
    fit_output_bias,
    operating_point,
    refit_spread,
    unseen_auc,
)
from medforget.evaluation.metrics import (
    SampleOutcomes,
    SetMetrics,
    auroc,
    forget_auc,
    forget_auc_se,
    logit_confidence,
    matched_weights,
    set_metrics,
)
from medforget.evaluation.mia import MiaResult, population_mia


class RefitMetrics(BaseModel):
    """Results after refitting the output bias on validation: what is left once threshold shifts are removed."""

    bias: list[float] = Field(description="Per-class logit offset fitted on validation (mean zero)")
    retain_accuracy: float | None
    forget_accuracy: float | None
    matched_test_accuracy: float | None = Field(
        None,
        description="Test accuracy with each class weighted by its share of the forget set: unseen images "
        "like the forgotten ones",
    )
    test_accuracy: float | None
    test_fnr: float | None


class OperatingMetrics(BaseModel):
    """Test results at the operating point that reaches the target validation sensitivity."""

    accuracy: float | None
    fnr: float | None
    fpr: float | None
    accuracy_sd: float | None = Field(
        None,
        description="Standard deviation of test accuracy when the operating point is refit on bootstrap draws of "
        "validation: how far the threshold's own noise moves it (the verdict's floor for threshold-set checks)",
    )
    fnr_sd: float | None = Field(None, description="The same for test FNR")


class ModelEval(BaseModel):
    """One model's results on the retain, forget, test and validation sets, and the membership attack."""

    retain: SetMetrics
    forget: SetMetrics
    test: SetMetrics
    val: SetMetrics | None = None
    mia: MiaResult
    test_auroc: float | None = Field(None, description="Threshold-free ranking of disease above the rest on test")
    refit: RefitMetrics | None = Field(None, description="Metrics after a bias refit on validation")
    operating_point: OperatingPoint | None = Field(
        None, description="The disease-logit offset that reaches the target validation sensitivity"
    )
    at_operating_point: OperatingMetrics | None = Field(None, description="Test results at that operating point")
    forget_auc_se: float | None = Field(
        None, description="Standard error of forget_auc from its images (DeLong), for the retrain-free verdict"
    )
    forget_auc: float | None = Field(
        None,
        description="P(a forget image is more confident than an unseen test image of its class), weighted to the "
        "forget class mix: 0.5 when the model cannot tell them apart, as after retraining",
    )
    forget_val_auc: float | None = Field(
        None,
        description="The same against validation images (after the same bias refit): what the methods' stopping "
        "rule measures, on the whole forget set",
    )
    # Per-sample results behind the numbers above, kept in memory (never serialised: a retain set
    # can hold tens of thousands of samples) so the report's slices, intervals and per-sample evidence
    # reuse the one inference pass per set that produced them. Empty for a ModelEval read back from JSON.
    _outcomes: dict[str, SampleOutcomes] = PrivateAttr(default_factory=dict)
    _phi: dict[str, np.ndarray] = PrivateAttr(default_factory=dict)

    def outcomes(self, name: str) -> SampleOutcomes | None:
        """Per-sample outcomes on ``retain``, ``forget``, ``test`` or ``val`` at the argmax, and on ``forget@refit``
        and ``test@refit`` after the bias refit, if this evaluation kept them."""
        return self._outcomes.get(name)

    def phi(self, name: str) -> np.ndarray | None:
        """Per-sample logit-scaled confidence (after the bias refit) on ``forget`` or ``test``, if kept."""
        return self._phi.get(name)

    def keep_outcomes(self, outcomes: dict[str, SampleOutcomes], phi: dict[str, np.ndarray] | None = None) -> ModelEval:
        """Attach the per-sample facts this evaluation was computed from (returns ``self``)."""
        self._outcomes = dict(outcomes)
        self._phi = dict(phi or {})
        return self


class EvalContext(BaseModel):
    """What every model of one verification is evaluated with: class layout, costs, attack seed, target."""

    model_config = {"frozen": True}

    classes: list[str]
    positive: list[int]
    fn_cost: float = 5.0
    fp_cost: float = 1.0
    seed: int = 0
    target_sensitivity: float | None = Field(
        None, description="Validation sensitivity the operating point must reach (the original model's)"
    )


def _refit(logits: dict[str, torch.Tensor], sets: dict[str, Split], ctx: EvalContext) -> RefitMetrics:
    bias = fit_output_bias(logits["val"], sets["val"].labels)
    shifted = {k: v + torch.as_tensor(bias, dtype=v.dtype) for k, v in logits.items()}
    m = {k: set_metrics(shifted[k], sets[k].labels, ctx.classes, ctx.positive) for k in ("retain", "forget", "test")}
    yf, yt = sets["forget"].labels.numpy(), sets["test"].labels.numpy()
    test_correct = (shifted["test"].argmax(1) == sets["test"].labels).numpy()
    w = matched_weights(yf, yt)
    return RefitMetrics(
        bias=[round(float(b), 5) for b in bias],
        retain_accuracy=m["retain"].accuracy,
        forget_accuracy=m["forget"].accuracy,
        matched_test_accuracy=float(np.sum(w * test_correct)) if len(yf) and w.sum() else None,
        test_accuracy=m["test"].accuracy,
        test_fnr=m["test"].fnr,
    )


def _at_operating_point(
    logits: dict[str, torch.Tensor], sets: dict[str, Split], ctx: EvalContext
) -> tuple[OperatingPoint | None, OperatingMetrics | None]:
    if ctx.target_sensitivity is None:
        return None, None
    op = operating_point(logits["val"], sets["val"].labels, ctx.positive, ctx.target_sensitivity)
    test = sets["test"].labels
    m = set_metrics(apply_offset(logits["test"], ctx.positive, op.offset), test, ctx.classes, ctx.positive)
    val = (logits["val"], sets["val"].labels)
    acc_sd, fnr_sd = refit_spread(*val, logits["test"], test, ctx.positive, ctx.target_sensitivity, seed=ctx.seed)
    return op, OperatingMetrics(accuracy=m.accuracy, fnr=m.fnr, fpr=m.fpr, accuracy_sd=acc_sd, fnr_sd=fnr_sd)


def evaluate(model: torch.nn.Module, sets: dict[str, Split], ctx: EvalContext, device: torch.device) -> ModelEval:
    """Everything the verification needs of one model, from one inference pass per set.

    Args:
        model: the network to evaluate (left in eval mode).
        sets: ``{"retain", "forget", "test", "val"}`` splits.
        ctx: classes, disease classes, clinical costs, the attack's seed and the target sensitivity.
        device: where to run inference.

    Returns:
        Metrics at the argmax, test AUROC, metrics after a validation bias refit, test results at the target
        operating point and the membership attack; per-sample outcomes and confidences are kept in memory.
    """
    return evaluate_logits({k: predict(model, s, device) for k, s in sets.items()}, sets, ctx)


def evaluate_logits(logits: dict[str, torch.Tensor], sets: dict[str, Split], ctx: EvalContext) -> ModelEval:
    """:func:`evaluate` from a model's logits on each set (the inference already done).

    Args:
        logits: ``{"retain", "forget", "test", "val"}`` logits, rows in the order of ``sets``' samples.
        sets: the splits the logits belong to (their labels).
        ctx: classes, disease classes, clinical costs, the attack's seed and the target sensitivity.

    Returns:
        The evaluation, with per-sample outcomes and confidences kept in memory.
    """
    metrics = {
        k: set_metrics(logits[k], s.labels, ctx.classes, ctx.positive, ctx.fn_cost, ctx.fp_cost)
        for k, s in sets.items()
    }
    mia = population_mia(
        (logits["retain"], sets["retain"].labels),
        (logits["test"], sets["test"].labels),
        (logits["forget"], sets["forget"].labels),
        seed=ctx.seed,
    )
    refit = _refit(logits, sets, ctx)
    op, at_op = _at_operating_point(logits, sets, ctx)
    bias = torch.as_tensor(refit.bias, dtype=torch.float32)
    phi = {k: logit_confidence(logits[k] + bias, sets[k].labels) for k in ("forget", "test")}
    auc_args = (phi["forget"], sets["forget"].labels.numpy(), phi["test"], sets["test"].labels.numpy())
    outcomes = {k: SampleOutcomes.from_logits(logits[k], s.labels) for k, s in sets.items()}
    for k in ("forget", "test"):  # what the forget-accuracy check counts, image by image
        outcomes[f"{k}@refit"] = SampleOutcomes.from_logits(logits[k] + bias, sets[k].labels)
    result = ModelEval(
        retain=metrics["retain"],
        forget=metrics["forget"],
        test=metrics["test"],
        val=metrics["val"],
        mia=mia,
        test_auroc=auroc(logits["test"], sets["test"].labels, ctx.positive),
        refit=refit,
        operating_point=op,
        at_operating_point=at_op,
        forget_auc=forget_auc(*auc_args),
        forget_auc_se=forget_auc_se(*auc_args),
        forget_val_auc=unseen_auc(logits["forget"], sets["forget"].labels, logits["val"], sets["val"].labels),
    )
    return result.keep_outcomes(outcomes, phi)


def val_sensitivity(
    model: torch.nn.Module | torch.Tensor, val: Split, positive: list[int], device: torch.device
) -> float | None:
    """The model's validation sensitivity at the argmax (1 - FNR): the target every operating point is set to.

    ``model`` may be its logits on ``val`` already (recorded in its checkpoint).
    """
    from medforget.evaluation.calibration import disease_margin

    is_pos = np.isin(val.labels.numpy(), positive)
    if not is_pos.any():
        return None
    logits = model if isinstance(model, torch.Tensor) else predict(model, val, device)
    return float((disease_margin(logits, positive)[is_pos] > 0).mean())


class EvalMemo:
    """Evaluations of identified models (by file hash), reused within one process.

    The original model and the retrains are evaluated identically by every method run on the same
    request (a study, a benchmark); remembering them saves those passes. Bounded, so a long study
    does not grow without limit.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._memo: dict[tuple[Any, ...], ModelEval] = {}

    def clear(self) -> None:
        """Forget every evaluation (as a fresh process starts)."""
        self._memo.clear()

    def evaluate(
        self,
        sha256: str | None,
        model: torch.nn.Module | Callable[[], torch.nn.Module],
        sets: dict[str, Split],
        ctx: EvalContext,
        device: torch.device,
        forget_ids: Sequence[str],
        logits: dict[str, torch.Tensor] | None = None,
    ) -> ModelEval:
        """:func:`evaluate`, remembered for a model with a known hash on the same forget set and context.

        ``model`` may be a function that builds it (loads it, recalibrates a copy): it is only called when
        the evaluation is not remembered and its ``logits`` on every set are not given.
        """
        build = model if not isinstance(model, torch.nn.Module) else (lambda: model)

        def run() -> ModelEval:
            return evaluate(build(), sets, ctx, device) if logits is None else evaluate_logits(logits, sets, ctx)

        if sha256 is None:
            return run()
        key = (sha256, "\n".join(forget_ids), ctx.model_dump_json())
        if key not in self._memo:
            if len(self._memo) >= self.limit:
                self._memo.clear()
            self._memo[key] = run()
        return self._memo[key]


MEMO = EvalMemo()
"""The process-wide memo used by :mod:`medforget.unlearn`."""


__all__ = [
    "MEMO",
    "EvalContext",
    "EvalMemo",
    "ModelEval",
    "OperatingMetrics",
    "RefitMetrics",
    "evaluate",
    "evaluate_logits",
    "val_sensitivity",
]
