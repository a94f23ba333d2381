"""What the unlearning page shows, read from a report as plain data for the templates: tables and figures.

Nothing here formats numbers for the reader or writes markup: the templates do both, with the filters of
:mod:`medforget.render.format`. Figures arrive as ``data:`` URIs (:func:`.figures.data_uri`). The K
retrained models are shown as their average with its spread (standard deviation and range); per-sample
analyses (difficulty, groups; :mod:`.slices`) use their per-sample average, as :mod:`medforget.verify.analysis`
computes.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medforget.evaluation import Interval, ModelEval
from medforget.render.figures import (
    ConfusionPanel,
    Estimate,
    MembershipPanel,
    data_uri,
    plot_confusion,
    plot_evidence,
    plot_membership,
    plot_metrics,
)
from medforget.render.format import pct
from medforget.render.palette import MODEL_SHORT, model_label
from medforget.verify.analysis import ModelIntervals
from medforget.verify.evidence import BEYOND, SampleEvidence
from medforget.verify.metrics import BY_KEY, Metric
from medforget.verify.report import UnlearnReport

PLOT_LEFT_OUT = {"forget_fnr"}
"""Metrics in the table but not in the headline figure (besides costs, which are not rates)."""


@dataclass(frozen=True)
class Fact:
    """One row of a two-column facts table; ``mono`` for hashes, which are read character by character."""

    label: str
    value: str
    mono: bool = False


@dataclass(frozen=True)
class Spread:
    """The retrained models' values of one number: their average, standard deviation and range."""

    mean: float | None
    sd: float | None
    low: float | None
    high: float | None
    values: tuple[float, ...]


def spread_of(values: Sequence[float | None]) -> Spread:
    """Average, SD (None with fewer than 2) and range of the retrained models' values (all None if one is missing).

    Args:
        values: one value per retrained model.

    Returns:
        Their spread.
    """
    known = tuple(float(v) for v in values if v is not None)
    if not known or len(known) < len(values):
        return Spread(None, None, None, None, known)
    sd = statistics.stdev(known) if len(known) > 1 else None
    return Spread(statistics.fmean(known), sd, min(known), max(known), known)


@dataclass(frozen=True)
class Models:
    """The models a page compares, in display order, with their labels for this report."""

    names: list[str]  # original, unlearned and, with retrained models, retrain
    labels: dict[str, str]  # column headers and legends ("Retrained without the patients (3 models)")
    short: dict[str, str]  # panel titles and narrow headers
    k: int  # how many retrained models


def models_of(report: UnlearnReport) -> Models:
    """The report's models by name, with their labels.

    Args:
        report: the unlearning report.

    Returns:
        The models in display order.
    """
    k = len(report.retrains)
    names = ["original", "unlearned"] + (["retrain"] if k else [])
    short = {m: MODEL_SHORT[m] for m in names}
    if k:
        short["retrain"] = f"Retrained (average of {k})" if k > 1 else "Retrained"
    return Models(names, {m: model_label(m, k) for m in names}, short, k)


@dataclass(frozen=True)
class MetricRow:
    """One headline number for every model, the retrained models' spread, and the difference to their average."""

    metric: Metric
    label: str
    estimates: dict[str, Estimate]
    spread: Spread | None
    difference: Estimate | None


def metric_interval(intervals: ModelIntervals | None, metric: Metric) -> Interval | None:
    """One model's 95% interval of ``metric`` (None if none was computed, e.g. for costs or older reports)."""
    if intervals is None:
        return None
    if metric.stat == "mia":
        return intervals.mia_efficacy
    return getattr(getattr(intervals, metric.set), metric.stat, None)


def metric_rows(report: UnlearnReport) -> list[MetricRow]:
    """The headline table from the report's metric rows: rates (in percent) first, then costs per case.

    Args:
        report: the unlearning report.

    Returns:
        One row per metric.
    """
    analysis, k = report.analysis, len(report.retrains)
    intervals = {m: getattr(analysis.intervals, m) if analysis is not None else None for m in ("original", "unlearned")}
    pos = ", ".join(report.positive)
    rows = []
    for row in sorted((r for r in report.metrics if r.key in BY_KEY), key=lambda r: not BY_KEY[r.key].is_rate):
        metric = BY_KEY[row.key]
        estimates = {
            "original": Estimate(row.original, metric_interval(intervals["original"], metric)),
            "unlearned": Estimate(row.unlearned, metric_interval(intervals["unlearned"], metric)),
        }
        spread = difference = None
        if k:
            spread = spread_of(row.retrain_values)
            estimates["retrain"] = Estimate(row.retrain_mean, None, spread.values)
            if metric.is_rate and row.unlearned is not None and row.retrain_mean is not None:
                difference = Estimate(row.unlearned - row.retrain_mean, row.ci)
        label = metric.plain.format(pos=pos)
        if not metric.is_rate:
            label += f" (missed disease counts {report.fn_cost:g}×, false alarm {report.fp_cost:g}×; lower is better)"
        rows.append(MetricRow(metric, label, estimates, spread, difference))
    return rows


def metrics_figure(rows: Sequence[MetricRow], models: Models) -> str:
    """The headline rates with their 95% ranges and the retrained models' spread, as a data URI."""
    shown = {r.metric.short: r.estimates for r in rows if r.metric.is_rate and r.metric.key not in PLOT_LEFT_OUT}
    return data_uri(plot_metrics(shown, models.labels))


@dataclass(frozen=True)
class ThresholdRow:
    """One threshold-independent number (or one at the common operating point) for every model."""

    label: str
    values: dict[str, float | None]  # original and unlearned
    spread: Spread | None  # the retrained models


@dataclass(frozen=True)
class OperatingPointView:
    """The operating point every model's missed disease is compared at."""

    target_sensitivity: float
    val_positives: int
    guaranteed: bool
    lower_bound: float | None


Getter = Callable[[ModelEval], float | None]


def threshold_rows(report: UnlearnReport) -> tuple[list[ThresholdRow], OperatingPointView | None]:
    """Test AUROC, forget accuracy after the threshold refit, and test errors at the operating point.

    Args:
        report: the unlearning report.

    Returns:
        The rows (those no model has a value for left out) and the operating point, if one was set.
    """
    pos = " or ".join(report.positive)
    getters: list[tuple[str, Getter]] = [
        ("Ranking of disease above healthy, new patients (AUROC)", lambda e: e.test_auroc),
        (
            "Accuracy on the erased images after re-setting each model's threshold on validation",
            lambda e: e.refit.forget_accuracy if e.refit else None,
        ),
        (f"Missed disease ({pos}) on new patients at the operating point", lambda e: _at_op(e, "fnr")),
        ("False alarms on new patients at the operating point", lambda e: _at_op(e, "fpr")),
        ("Accuracy on new patients at the operating point", lambda e: _at_op(e, "accuracy")),
    ]
    rows = []
    for label, get in getters:
        values = {"original": get(report.original), "unlearned": get(report.unlearned)}
        spread = spread_of([get(r) for r in report.retrains]) if report.retrains else None
        if any(v is not None for v in values.values()) or (spread is not None and spread.mean is not None):
            rows.append(ThresholdRow(label, values, spread))
    op = report.original.operating_point or report.unlearned.operating_point
    view = None
    if op is not None:
        view = OperatingPointView(op.target_sensitivity, op.val_positives, op.guaranteed, op.sensitivity_lower_bound)
    return rows, view


def _at_op(ev: ModelEval, stat: str) -> float | None:
    return getattr(ev.at_operating_point, stat) if ev.at_operating_point is not None else None


def confusion_figure(report: UnlearnReport, models: Models) -> str:
    """Confusion matrices on new patients; the retrained models' averaged cell by cell. A data URI."""
    panels = [
        ConfusionPanel("original", models.short["original"], report.original.test.confusion),
        ConfusionPanel("unlearned", models.short["unlearned"], report.unlearned.test.confusion),
    ]
    matrices = [r.test.confusion for r in report.retrains if r.test.confusion]
    if models.k and len(matrices) == models.k:
        mean = [[statistics.fmean(cells) for cells in zip(*rows, strict=True)] for rows in zip(*matrices, strict=True)]
        panels.append(ConfusionPanel("retrain", models.short["retrain"], mean))
    return data_uri(plot_confusion(report.classes, panels))


def membership_figure(report: UnlearnReport, models: Models) -> str:
    """The membership attack's scores per model (the retrained models' pooled), as a data URI."""

    def panel(model: str, evals: Sequence[ModelEval]) -> MembershipPanel:
        rate = statistics.fmean(e.mia.forget_non_member_rate for e in evals)
        title = f"{models.short[model]}\n{pct(rate, 0)} of erased images judged 'not used'"
        forget = [s for e in evals for s in e.mia.forget_scores]
        return MembershipPanel(model, title, forget, [s for e in evals for s in e.mia.test_scores])

    panels = [panel("original", [report.original]), panel("unlearned", [report.unlearned])]
    if report.retrains:
        panels.append(panel("retrain", report.retrains))
    return data_uri(plot_membership(panels))


@dataclass(frozen=True)
class EvidenceView:
    """The per-image evidence section: the report's numbers, the histogram and the |z| that counts as unusual."""

    evidence: SampleEvidence
    figure: str | None
    beyond: float


def evidence_view(report: UnlearnReport) -> EvidenceView | None:
    """The per-image evidence with its histogram, or None if the report has none (fewer than 2 retrains).

    Args:
        report: the unlearning report.

    Returns:
        What the section shows.
    """
    ev = report.evidence
    if ev is None:
        return None
    figure = data_uri(plot_evidence(ev.forget_z, BEYOND)) if ev.forget_z else None
    return EvidenceView(ev, figure, BEYOND)


def provenance_facts(report: UnlearnReport, ledger_entry: int | str | None) -> list[Fact]:
    """The provenance table of the unlearning page.

    Args:
        report: the unlearning report.
        ledger_entry: the report's position in the deletion ledger, a placeholder for it, or None.

    Returns:
        One fact per row.
    """
    r, p = report, report.provenance
    seeds = ", ".join(str(s) for s in r.retrain_seeds) or "—"
    rows = [
        ("Request ID", r.request.request_id or "(no id)"),
        ("Request received", r.request.received_at.isoformat() if r.request.received_at else "—"),
        ("Method", r.method),
        ("Method parameters", json.dumps(r.params, sort_keys=True)),
        ("Seed", str(p.seed)),
        ("Dataset", p.dataset),
        ("Dataset fingerprint (SHA-256)", p.dataset_fingerprint),
        ("Input model", p.input_checkpoint),
        ("Input model SHA-256", p.input_sha256),
        ("Output model", p.output_checkpoint or "not written"),
        ("Output model SHA-256", p.output_sha256 or "—"),
        ("Retrained models", f"{r.cost.baseline_source}; seeds {seeds}"),
    ]
    rows += [(f"Retrained model {i} SHA-256", h) for i, h in enumerate(p.baseline_sha256, 1)]
    rows += [
        ("Ledger position", str(ledger_entry) if ledger_entry is not None else "not recorded in a ledger"),
        ("Report format", r.format),
        ("medforget version", p.medforget_version),
        ("Device", p.device),
        ("Date", p.created_at),
    ]
    if r.analysis is not None:
        iv = r.analysis.intervals
        rows.append(("95% ranges", f"{iv.method}; {iv.n_resamples} resamples, seed {iv.seed}"))
    return [Fact(k, v, mono="SHA" in k or "fingerprint" in k) for k, v in rows]


__all__ = [
    "PLOT_LEFT_OUT",
    "EvidenceView",
    "Fact",
    "MetricRow",
    "Models",
    "OperatingPointView",
    "Spread",
    "ThresholdRow",
    "confusion_figure",
    "evidence_view",
    "membership_figure",
    "metric_interval",
    "metric_rows",
    "metrics_figure",
    "provenance_facts",
    "spread_of",
    "threshold_rows",
]
