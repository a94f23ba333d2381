"""Evaluation: clinical metrics, membership inference and bootstrap intervals, computed from logits.

:func:`evaluate` runs a model once per set and returns a :class:`ModelEval`; everything the
verification reports is an aggregation of those per-sample results.
"""

from medforget.evaluation.bootstrap import Interval, bootstrap_ci, bootstrap_ratios, percentile_interval
from medforget.evaluation.calibration import (
    OperatingPoint,
    apply_offset,
    fit_output_bias,
    operating_point,
    unseen_auc,
    unseen_confidences,
)
from medforget.evaluation.evaluate import (
    MEMO,
    EvalContext,
    EvalMemo,
    ModelEval,
    OperatingMetrics,
    RefitMetrics,
    evaluate,
    evaluate_logits,
    val_sensitivity,
)
from medforget.evaluation.metrics import (
    AveragedOutcomes,
    SampleOutcomes,
    SetMetrics,
    SliceMetrics,
    auroc,
    class_mix_mean,
    difficulty_terciles,
    forget_auc,
    forget_auc_by_class,
    logit_confidence,
    set_metrics,
    slice_metrics,
)
from medforget.evaluation.mia import MiaResult, mia_features, population_mia

__all__ = [
    "MEMO",
    "AveragedOutcomes",
    "EvalContext",
    "EvalMemo",
    "Interval",
    "MiaResult",
    "ModelEval",
    "OperatingMetrics",
    "OperatingPoint",
    "RefitMetrics",
    "SampleOutcomes",
    "SetMetrics",
    "SliceMetrics",
    "apply_offset",
    "auroc",
    "bootstrap_ci",
    "bootstrap_ratios",
    "class_mix_mean",
    "difficulty_terciles",
    "evaluate",
    "evaluate_logits",
    "fit_output_bias",
    "forget_auc",
    "forget_auc_by_class",
    "logit_confidence",
    "mia_features",
    "operating_point",
    "percentile_interval",
    "population_mia",
    "set_metrics",
    "slice_metrics",
    "unseen_auc",
    "unseen_confidences",
    "val_sensitivity",
]
