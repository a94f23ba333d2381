"""The verification report: what an unlearning run did, measured against exact unlearning.

One pydantic model (:class:`UnlearnReport`, JSON Schema via :func:`report_schema`) is
written as JSON for programs and rendered as a Rich table for people. Every number for the
unlearned model stands next to the same number for the original model and for a model
retrained from scratch without the forgotten samples (the gold standard), with the
false-negative rate (missed disease) always in view.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field
from rich.console import Group
from rich.table import Table
from rich.text import Text

from medforget import __version__
from medforget.metrics import MiaResult, SetMetrics
from medforget.request import ClassCount

REPORT_FORMAT = "medforget-report/1"


class ModelEval(BaseModel):
    """One model's results on the retain, forget and test sets, and the membership attack."""

    retain: SetMetrics
    forget: SetMetrics
    test: SetMetrics
    mia: MiaResult


class Thresholds(BaseModel):
    """Limits of the verdict (fractions: 0.05 = 5 percentage points). Documented CLI defaults."""

    forget_accuracy_tolerance: float = Field(0.05, ge=0, description="|forget acc - retrain's| at most this")
    mia_tolerance: float = Field(0.10, ge=0, description="|MIA efficacy - retrain's| at most this")
    max_test_accuracy_drop: float = Field(0.03, ge=0, description="retrain test acc - unlearned at most this")
    max_fnr_increase: float = Field(0.05, ge=0, description="unlearned test FNR - retrain's at most this")


class Check(BaseModel):
    name: str
    description: str
    value: float | None
    limit: float
    passed: bool


class Verdict(BaseModel):
    status: Literal["pass", "fail", "unverified"]
    summary: str = Field(description="The verdict in one sentence")
    checks: list[Check] = Field(default_factory=list)


class Gap(BaseModel):
    metric: str
    unlearned: float | None
    retrain: float | None
    gap: float | None = Field(description="|unlearned - retrain|")


class Cost(BaseModel):
    method_seconds: float
    retrain_seconds: float | None = Field(None, description="Wall time of the retrain baseline (as first trained)")
    speedup: float | None = Field(None, description="retrain_seconds / method_seconds")
    baseline_source: str = Field(description="'retrain (trained now)', 'retrain (cache)', a path, or 'none'")


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
    output_checkpoint: str
    output_sha256: str
    baseline_sha256: str | None
    seed: int
    device: str


class UnlearnReport(BaseModel):
    """Everything ``medforget unlearn`` measured, with what it was measured on."""

    format: str = REPORT_FORMAT
    method: str
    params: dict[str, Any]
    request: RequestSummary
    classes: list[str]
    positive: list[str] = Field(description="Disease classes, on which FNR is measured")
    fn_cost: float
    fp_cost: float
    original: ModelEval
    unlearned: ModelEval
    retrain: ModelEval | None
    gaps: list[Gap]
    average_gap: float | None = Field(description="Mean |gap| over retain, forget, test accuracy and MIA efficacy")
    thresholds: Thresholds
    verdict: Verdict
    cost: Cost
    provenance: Provenance


def report_schema() -> dict[str, Any]:
    return UnlearnReport.model_json_schema()


GAP_METRICS: list[tuple[str, Any]] = [
    ("retain accuracy", lambda e: e.retain.accuracy),
    ("forget accuracy", lambda e: e.forget.accuracy),
    ("test accuracy", lambda e: e.test.accuracy),
    ("MIA efficacy", lambda e: e.mia.forget_non_member_rate),
]


def compute_gaps(unlearned: ModelEval, retrain: ModelEval | None) -> tuple[list[Gap], float | None]:
    gaps = []
    for name, get in [*GAP_METRICS, ("test FNR", lambda e: e.test.fnr)]:
        u = get(unlearned)
        r = get(retrain) if retrain is not None else None
        gaps.append(
            Gap(metric=name, unlearned=u, retrain=r, gap=abs(u - r) if u is not None and r is not None else None)
        )
    core = [g.gap for g in gaps[: len(GAP_METRICS)] if g.gap is not None]
    return gaps, (sum(core) / len(core) if retrain is not None and core else None)


def judge(unlearned: ModelEval, retrain: ModelEval | None, t: Thresholds) -> Verdict:
    """Pass only if the unlearned model forgets like retrain and is no less safe or accurate."""
    if retrain is None:
        return Verdict(
            status="unverified",
            summary="Not verified: no retrained baseline was compared (--baseline none), so forgetting is unproven.",
        )

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    fa = diff(unlearned.forget.accuracy, retrain.forget.accuracy)
    mia = diff(unlearned.mia.forget_non_member_rate, retrain.mia.forget_non_member_rate)
    drop = diff(retrain.test.accuracy, unlearned.test.accuracy)
    fnr = diff(unlearned.test.fnr, retrain.test.fnr)
    checks = [
        Check(
            name="forget accuracy",
            description="forget-set accuracy within tolerance of retrain",
            value=None if fa is None else abs(fa),
            limit=t.forget_accuracy_tolerance,
            passed=fa is not None and abs(fa) <= t.forget_accuracy_tolerance,
        ),
        Check(
            name="membership inference",
            description="forget samples look like non-members as often as for retrain",
            value=None if mia is None else abs(mia),
            limit=t.mia_tolerance,
            passed=mia is not None and abs(mia) <= t.mia_tolerance,
        ),
        Check(
            name="test accuracy",
            description="test accuracy no more than the limit below retrain",
            value=drop,
            limit=t.max_test_accuracy_drop,
            passed=drop is None or drop <= t.max_test_accuracy_drop,
        ),
        Check(
            name="missed disease (test FNR)",
            description="test false-negative rate no more than the limit above retrain",
            value=fnr,
            limit=t.max_fnr_increase,
            passed=fnr is None or fnr <= t.max_fnr_increase,
        ),
    ]
    failed = [c.name for c in checks if not c.passed]
    if not failed:
        summary = "Pass: the unlearned model matches a model retrained without these patients, within every limit."
    else:
        summary = f"Fail: the unlearned model differs from retraining on {', '.join(failed)}."
    return Verdict(status="fail" if failed else "pass", summary=summary, checks=checks)


# --------------------------------------------------------------------------- terminal rendering


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _pts(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def render(report: UnlearnReport) -> Group:
    """A Rich renderable: the verdict, then original / unlearned / retrain side by side."""
    r = report
    pos = ", ".join(r.positive)
    table = Table(
        title=f"{r.method} on request {r.request.request_id or '(no id)'}: "
        f"{r.request.n_samples} samples, {r.request.n_patients} patients forgotten"
    )
    for col, just in (
        ("metric", "left"),
        ("original", "right"),
        ("unlearned", "right"),
        ("retrain", "right"),
        ("gap to retrain (pts)", "right"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    models = (r.original, r.unlearned, r.retrain)
    rows: list[tuple[str, Any]] = [
        ("retain accuracy", lambda e: e.retain.accuracy),
        ("forget accuracy", lambda e: e.forget.accuracy),
        ("test accuracy", lambda e: e.test.accuracy),
        (f"test missed disease, FNR ({pos})", lambda e: e.test.fnr),
        ("test false alarms, FPR", lambda e: e.test.fpr),
        ("forget FNR", lambda e: e.forget.fnr),
        (f"test clinical cost / case (FN={r.fn_cost:g}, FP={r.fp_cost:g})", lambda e: e.test.clinical_cost),
        ("MIA efficacy (forget called non-member)", lambda e: e.mia.forget_non_member_rate),
    ]
    for name, get in rows:
        vals = [get(m) if m is not None else None for m in models]
        cost_row = "cost" in name
        fmt = (lambda v: "—" if v is None else f"{v:.3f}") if cost_row else _pct
        gap = None if vals[1] is None or vals[2] is None else abs(vals[1] - vals[2])
        style = "bold" if "FNR" in name and name.startswith("test") else None
        table.add_row(name, *(fmt(v) for v in vals), "—" if cost_row else _pts(gap), style=style)
    avg = "—" if r.average_gap is None else f"{100 * r.average_gap:.2f} pts"
    cost = r.cost
    speed = f", {cost.speedup:.1f}x faster than retraining" if cost.speedup else ""
    colour = {"pass": "green", "fail": "red", "unverified": "yellow"}[r.verdict.status]
    lines = [
        Text(r.verdict.summary, style=f"bold {colour}"),
        table,
        Text(
            f"average gap to retrain: {avg}   method time: {cost.method_seconds:.1f} s{speed} "
            f"(baseline: {cost.baseline_source})"
        ),
    ]
    for c in r.verdict.checks:
        mark = "✓" if c.passed else "✗"
        lines.append(
            Text(
                f"  {mark} {c.name}: {_pts(c.value)} pts (limit {_pts(c.limit)})", style="green" if c.passed else "red"
            )
        )
    for w in r.request.warnings:
        lines.append(Text(f"warning: {w}", style="yellow"))
    return Group(*lines)
