"""The metrics a verification reports, defined once.

Each :class:`Metric` says how to read one number from a model's evaluation, what to call it for
an engineer (terminal, JSON gap rows, study columns) and for a non-specialist (HTML), and whether
it counts in the average gap to retraining. The report's metric rows, the terminal table, the HTML
table and plot and the study's CSV columns are all generated from :data:`METRICS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from medforget.evaluation import Interval, ModelEval


@dataclass(frozen=True)
class Metric:
    """One reported number."""

    key: str  # stable identifier: study CSV columns are "<model>_<key>"
    label: str  # engineer's name: terminal rows and the report's metric rows
    plain: str  # non-specialist's name for the HTML table; "{pos}" is replaced by the disease class
    short: str  # plot axis label
    set: Literal["retain", "forget", "test"]
    stat: Literal["accuracy", "fnr", "fpr", "clinical_cost", "mia"]
    gap: Literal["average", "row", "none"]  # in the average gap; a gap row of its own; neither

    def value(self, ev: ModelEval) -> float | None:
        """This metric of one model's evaluation."""
        if self.stat == "mia":
            return ev.mia.forget_non_member_rate
        return getattr(getattr(ev, self.set), self.stat)

    @property
    def is_rate(self) -> bool:
        """A fraction in [0, 1] (shown in percent); otherwise a cost per case."""
        return self.stat != "clinical_cost"

    @property
    def difference_key(self) -> str:
        """Key of its paired unlearned - retrain bootstrap interval (``ConfidenceIntervals.differences``)."""
        return f"{self.set} {self.stat}"


METRICS: list[Metric] = [
    Metric(
        "retain_accuracy",
        "retain accuracy",
        "Accuracy on the remaining training images",
        "Accuracy, remaining training images",
        "retain",
        "accuracy",
        "average",
    ),
    Metric(
        "forget_accuracy",
        "forget accuracy",
        "Accuracy on the erased images",
        "Accuracy, erased images",
        "forget",
        "accuracy",
        "average",
    ),
    Metric(
        "test_accuracy",
        "test accuracy",
        "Accuracy on new patients (test)",
        "Accuracy, new patients",
        "test",
        "accuracy",
        "average",
    ),
    Metric(
        "test_fnr",
        "test FNR",
        "Missed disease ({pos}) on new patients (FNR)",
        "Missed disease, new patients",
        "test",
        "fnr",
        "row",
    ),
    Metric(
        "test_fpr",
        "test FPR",
        "False alarms on new patients (FPR)",
        "False alarms, new patients",
        "test",
        "fpr",
        "none",
    ),
    Metric(
        "forget_fnr",
        "forget FNR",
        "Missed disease among the erased images",
        "Missed disease, erased images",
        "forget",
        "fnr",
        "none",
    ),
    Metric(
        "test_clinical_cost",
        "test clinical cost / case",
        "Expected clinical cost per new patient",
        "Clinical cost, new patients",
        "test",
        "clinical_cost",
        "none",
    ),
    Metric(
        "mia",
        "MIA efficacy",
        "Erased images the attacker judges 'not used' (membership score)",
        "Erased images judged 'not used'",
        "forget",
        "mia",
        "average",
    ),
]

BY_LABEL: dict[str, Metric] = {m.label: m for m in METRICS}


class MetricRow(BaseModel):
    """One reported number for the original, the unlearned model and the K retrains."""

    key: str
    label: str
    original: float | None
    unlearned: float | None
    retrain_mean: float | None = Field(description="Mean over the retrains (None without a baseline)")
    retrain_sd: float | None = Field(description="Standard deviation over the retrains (None with fewer than 2)")
    retrain_values: list[float | None] = Field(default_factory=list)
    gap: float | None = Field(description="|unlearned - retrain mean|")
    ci: Interval | None = Field(
        None,
        description="95% paired-bootstrap interval of unlearned - retrain mean over resampled images (sampling "
        "noise only; the retrains' own spread is retrain_sd)",
    )


def metric_rows(
    original: ModelEval, unlearned: ModelEval, retrains: Sequence[ModelEval], intervals: dict[str, Interval | None]
) -> list[MetricRow]:
    """Every metric of :data:`METRICS` for the three kinds of model, with its paired interval if computed.

    Args:
        original: the model before unlearning.
        unlearned: the model after.
        retrains: the K retrained models (empty without a baseline).
        intervals: paired bootstrap intervals of unlearned - retrain, keyed by metric label.

    Returns:
        One row per metric.
    """
    rows = []
    for m in METRICS:
        values = [m.value(r) for r in retrains]
        known = [v for v in values if v is not None]
        mean = float(np.mean(known)) if known and len(known) == len(values) else None
        u = m.value(unlearned)
        rows.append(
            MetricRow(
                key=m.key,
                label=m.label,
                original=m.value(original),
                unlearned=u,
                retrain_mean=mean,
                retrain_sd=float(np.std(known, ddof=1)) if mean is not None and len(known) > 1 else None,
                retrain_values=values,
                gap=abs(u - mean) if u is not None and mean is not None else None,
                ci=intervals.get(m.label),
            )
        )
    return rows


def average_gap(rows: Sequence[MetricRow], of: Literal["unlearned", "original"] = "unlearned") -> float | None:
    """Mean |gap| over the metrics marked ``average`` (retain, forget, test accuracy, MIA efficacy).

    Args:
        rows: the report's metric rows.
        of: the unlearned model, or the original as it predicts (at its own decision threshold; the unlearned
            model and the retrains are recalibrated): how far from the retrains the model was before, the scale
            a method's own gap is read against.

    Returns:
        The mean, or None when no such metric has both values.
    """
    pairs = [(getattr(r, of), r.retrain_mean) for r in rows if BY_KEY[r.key].gap == "average"]
    core = [abs(v - m) for v, m in pairs if v is not None and m is not None]
    return sum(core) / len(core) if core else None


BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}

__all__ = ["BY_KEY", "BY_LABEL", "METRICS", "Metric", "MetricRow", "average_gap", "metric_rows"]
