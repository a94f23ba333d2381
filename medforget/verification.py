"""Verification: evaluate the original, the unlearned model and the K retrains alike, judge, assemble the report.

Every model is evaluated the same way (:func:`medforget.evaluation.evaluate`): at its argmax, after a bias
refit on validation, and at the operating point that reaches the original model's validation sensitivity.
The verdict (:mod:`medforget.verify.checks`) compares the unlearned model with the retrains' distribution;
the per-sample evidence (:mod:`medforget.verify.evidence`) compares it sample by sample.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from medforget.baseline import Retrain
from medforget.config import UnlearnSettings
from medforget.evaluation import MEMO, EvalContext, ModelEval, OperatingPoint
from medforget.methods import Stopping
from medforget.recalibrate import retrain_eval
from medforget.session import Task
from medforget.verify.analysis import build_analysis
from medforget.verify.checks import judge
from medforget.verify.evidence import SampleEvidence, sample_evidence
from medforget.verify.metrics import average_gap, metric_rows
from medforget.verify.report import Cost, Provenance, RequestSummary, UnlearnReport
from medforget.verify.verdict import UNVERIFIED, Verdict

if TYPE_CHECKING:
    from medforget.config import TuningRecord


@dataclass
class MethodRun:
    """What the method and the baseline produced, before evaluation (the method's part first, the rest added)."""

    model: nn.Module
    params: dict[str, Any]
    seconds: float
    retrains: list[Retrain] = field(default_factory=list)
    source: str = "none"  # where the retrains came from (Cost.baseline_source)
    recalibration: OperatingPoint | None = None  # the offset applied to the unlearned model, if any
    stopping: Stopping | None = None  # the method's stopping record (iterative methods)
    logits: dict[str, torch.Tensor] = field(default_factory=dict)  # the final model's, on every evaluation set


@dataclass
class Evaluations:
    original: ModelEval
    unlearned: ModelEval
    retrains: list[ModelEval]


def evaluate_all(task: Task, settings: UnlearnSettings, run: MethodRun) -> Evaluations:
    """The original, the unlearned model and every retrain, evaluated identically (identified models memoised)."""
    ds = task.dataset
    target = task.target_sensitivity()
    ctx = EvalContext(
        classes=ds.classes,
        positive=ds.positive,
        fn_cost=settings.fn_cost,
        fp_cost=settings.fp_cost,
        seed=settings.seed,
        target_sensitivity=target,
    )
    sets, ids = task.eval_sets(), task.forget.sample_ids
    return Evaluations(
        original=MEMO.evaluate(
            task.checkpoint.sha256, task.original, sets, ctx, task.device, ids, task.recorded_eval_logits()
        ),
        unlearned=MEMO.evaluate(None, run.model, sets, ctx, task.device, ids, run.logits or None),
        retrains=[retrain_eval(task, r, ctx, settings.recalibrate) for r in run.retrains],
    )


def evidence_of(evals: Evaluations, task: Task) -> SampleEvidence | None:
    """The per-sample evidence of the unlearned model against the retrains (None without 2 of them)."""
    if len(evals.retrains) < 2:
        return None
    parts = []
    for name, split in (("forget", task.forget), ("test", task.dataset.test)):
        phi = evals.unlearned.phi(name)
        ref = [r.phi(name) for r in evals.retrains]
        if phi is None or any(p is None for p in ref):
            return None
        parts.append((phi, np.stack(ref), split.labels.numpy()))  # type: ignore[arg-type]
    return sample_evidence(parts[0], parts[1])


def _calibrated(task: Task, settings: UnlearnSettings, evals: Evaluations) -> Verdict | None:
    """The verdict against a calibration (``medforget calibrate``), if one was given."""
    if settings.calibration is None:
        return None
    from medforget.calibrate import check_fits, judge_calibrated, read_calibration

    cal = read_calibration(settings.calibration)
    fraction = len(task.forget) / len(task.dataset.train)
    for warning in check_fits(cal, task, fraction):
        if warning not in task.resolved.warnings:
            task.resolved.warnings.append(warning)
    return judge_calibrated(evals.unlearned, evals.original, cal, settings.thresholds)


def _request_summary(task: Task) -> RequestSummary:
    resolved, req = task.resolved, task.resolved.request
    return RequestSummary(
        request_id=req.request_id,
        received_at=req.received_at,
        reason=req.reason,
        n_samples=len(resolved.sample_ids),
        n_patients=len(resolved.patient_ids),
        counts=resolved.counts,
        previously_forgotten=resolved.previously_forgotten,
        warnings=resolved.warnings,
    )


def _cost(run: MethodRun, tuning: TuningRecord | None) -> Cost:
    known = [r.seconds for r in run.retrains if r.seconds is not None]
    retrain_seconds = statistics.mean(known) if known else None
    m = run.seconds
    return Cost(
        method_seconds=round(m, 3),
        retrain_seconds=None if retrain_seconds is None else round(retrain_seconds, 3),
        speedup=round(retrain_seconds / m, 2) if retrain_seconds and m else None,
        baseline_source=run.source,
        retrains_trained=sum(not r.cached for r in run.retrains),
        tuning_seconds=tuning.tuning_seconds if tuning is not None else None,
        tuning_break_even_requests=tuning.break_even_requests if tuning is not None else None,
    )


def verify(task: Task, settings: UnlearnSettings, run: MethodRun, tuning: TuningRecord | None = None) -> UnlearnReport:
    """Evaluate every model, judge the unlearned one against the retrains, and assemble the report.

    Args:
        task: the opened request.
        settings: costs, tolerances, the method's seed.
        run: the unlearned model and the retrains.
        tuning: how the method's parameters were tuned, if they were.

    Returns:
        The report; its provenance's output path and hash are filled in when the outputs are written.
    """
    evals = evaluate_all(task, settings, run)
    ds = task.dataset
    evidence = evidence_of(evals, task)
    calibrated = _calibrated(task, settings, evals)
    if evals.retrains:
        verdict = judge(evals.unlearned, evals.retrains, evidence, settings.thresholds, settings.recalibrate)
    else:
        verdict = calibrated or UNVERIFIED
    attributes = {"forget": task.forget.attributes, "test": ds.test.attributes}
    analysis, intervals = build_analysis(
        evals.original, evals.unlearned, evals.retrains, attributes, ds.positive, settings.seed
    )
    rows = metric_rows(evals.original, evals.unlearned, evals.retrains, intervals)
    return UnlearnReport(
        method=settings.method,
        preset=settings.preset,
        params=run.params,
        stopping=run.stopping,
        request=_request_summary(task),
        classes=ds.classes,
        positive=[ds.classes[i] for i in ds.positive],
        fn_cost=settings.fn_cost,
        fp_cost=settings.fp_cost,
        original=evals.original,
        unlearned=evals.unlearned,
        retrains=evals.retrains,
        retrain_seeds=[r.seed for r in run.retrains],
        metrics=rows,
        average_gap=average_gap(rows),
        original_average_gap=average_gap(rows, of="original"),
        thresholds=settings.thresholds,
        verdict=verdict,
        evidence=evidence,
        recalibration=run.recalibration,
        calibrated_verdict=calibrated if evals.retrains else None,
        cost=_cost(run, tuning),
        provenance=Provenance(
            dataset=ds.name,
            dataset_fingerprint=task.checkpoint.meta.dataset.fingerprint,
            input_checkpoint=task.checkpoint.path,
            input_sha256=task.checkpoint.sha256,
            baseline_sha256=[r.sha256 for r in run.retrains],
            seed=settings.seed,
            device=str(task.device),
        ),
        analysis=analysis,
    )


__all__ = ["Evaluations", "MethodRun", "evaluate_all", "evidence_of", "verify"]
