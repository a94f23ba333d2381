"""The verification report: what an unlearning run did, measured against exact unlearning.

One pydantic model (:class:`UnlearnReport`, JSON Schema via :func:`report_schema`) is written as
JSON for programs and rendered for people (:mod:`medforget.render`). Every number for the
unlearned model stands next to the same number for the original model and for a model retrained
from scratch without the forgotten samples (the gold standard), with the false-negative rate
(missed disease) always in view.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from medforget import __version__
from medforget.config import Thresholds
from medforget.evaluation import ModelEval, OperatingPoint
from medforget.methods import Stopping
from medforget.request import ClassCount
from medforget.verify.analysis import ReportAnalysis
from medforget.verify.evidence import SampleEvidence
from medforget.verify.metrics import MetricRow
from medforget.verify.verdict import Verdict

REPORT_FORMAT = "medforget-report/2"


class Cost(BaseModel):
    method_seconds: float
    retrain_seconds: float | None = Field(
        None, description="Wall time of one retrain (the mean over the K, as each was first trained)"
    )
    speedup: float | None = Field(None, description="retrain_seconds / method_seconds")
    baseline_source: str = Field(
        description="'K retrains (n trained now, m from the cache)', a checkpoint path, 'calibrated', or 'none'"
    )
    retrains_trained: int = Field(0, description="Retrains trained for this run (the rest came from the cache)")
    tuning_seconds: float | None = Field(
        None, description="One-off cost of tuning the method's parameters (medforget tune), if they were tuned"
    )
    tuning_break_even_requests: float | None = Field(
        None, description="Requests after which tuning once + unlearning is cheaper than retraining every time"
    )


class RequestSummary(BaseModel):
    request_id: str | None
    received_at: datetime | None
    reason: str | None
    n_samples: int
    n_patients: int
    counts: list[ClassCount]
    previously_forgotten: int
    warnings: list[str]


class Provenance(BaseModel):
    medforget_version: str = __version__
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    dataset: str
    dataset_fingerprint: str
    input_checkpoint: str
    input_sha256: str
    output_checkpoint: str | None = Field(
        None, description="Where the unlearned checkpoint was written (None: not written)"
    )
    output_sha256: str | None = Field(None, description="SHA-256 of the written checkpoint file")
    baseline_sha256: list[str] = Field(default_factory=list, description="File hashes of the retrains compared with")
    seed: int
    device: str


class UnlearnReport(BaseModel):
    """Everything ``medforget unlearn`` measured, with what it was measured on."""

    format: str = REPORT_FORMAT
    method: str
    preset: str = Field("fast", description="The method's named parameter set the params started from")
    params: dict[str, Any]
    stopping: Stopping | None = Field(
        None,
        description="How the method decided it was done: its stopping rule's checks and the step it stopped at "
        "(None: a method without steps, or a report written before it was recorded)",
    )
    request: RequestSummary
    classes: list[str]
    positive: list[str] = Field(description="Disease classes, on which FNR is measured")
    fn_cost: float
    fp_cost: float
    original: ModelEval
    unlearned: ModelEval
    retrains: list[ModelEval] = Field(description="The K models retrained without the forget set (the reference)")
    retrain_seeds: list[int] = Field(default_factory=list, description="Their seeds (never the original's)")
    metrics: list[MetricRow] = Field(description="Every reported number, side by side (see medforget.verify.metrics)")
    average_gap: float | None = Field(
        description="Mean |unlearned - retrain mean| over retain, forget, test accuracy and MIA efficacy"
    )
    original_average_gap: float | None = Field(
        None,
        description="The same for the original model as it predicts (at its own decision threshold, where the "
        "unlearned model and the retrains are recalibrated): how far from the retrains the model was before, the "
        "scale average_gap is read against (None without a baseline, or in a report written before it was "
        "recorded)",
    )
    thresholds: Thresholds
    verdict: Verdict
    evidence: SampleEvidence | None = Field(
        None, description="Per-sample confidences against the retrains (None with fewer than 2 retrains)"
    )
    recalibration: OperatingPoint | None = Field(
        None,
        description="The decision threshold reset on validation after unlearning (so sensitivity is at least the "
        "original's); the retrains were reset the same way before being compared",
    )
    calibrated_verdict: Verdict | None = Field(
        None,
        description="With retrains and a calibration both given: the verdict the calibration alone would have "
        "reached (to compare the two)",
    )
    cost: Cost
    provenance: Provenance
    analysis: ReportAnalysis | None = Field(
        None,
        description="Bootstrap intervals, forget-set difficulty terciles and attribute groups (absent in reports "
        "written before it was added)",
    )


def report_schema() -> dict[str, Any]:
    return UnlearnReport.model_json_schema()
