"""The unlearning report as one self-contained HTML page for readers who are not ML engineers.

A data-protection officer must be able to answer "was this patient's data erased, and is the
model still safe?" without reading JSON. The page therefore leads with the verdict in one plain,
colour-coded sentence, explains what was done in words, shows every number next to the model
retrained from scratch (the legal gold standard: a model that never saw the patients), with the
95% range each number could plausibly take, and ends with the provenance needed for an audit.

The file has no external resources (inline CSS, plots as base64 PNG made with matplotlib's Agg
canvas), so it can be archived, e-mailed or opened offline years later and look the same.
Every piece of text from the report is escaped. Each section is built by one function.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medforget.fileio import atomic_path
from medforget.metrics import Interval, SliceMetrics
from medforget.report import (
    CHECK_STATISTICS,
    GROUP_GAP_MIN_N,
    AttributeAnalysis,
    Check,
    DifficultyAnalysis,
    ModelEval,
    ModelIntervals,
    UnlearnReport,
)

if TYPE_CHECKING:  # matplotlib is imported lazily, only when a page is rendered
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from medforget.audit import AuditReport

MODEL_COLOURS = {"original": "#9e9e9e", "unlearned": "#1565c0", "retrain": "#e67e22"}
TITLE_COLOURS = {**MODEL_COLOURS, "original": "#616161"}  # grey text needs more contrast than grey bars
MODEL_LABELS = {
    "original": "Original model",
    "unlearned": "Updated model (after erasure)",
    "retrain": "Retrained without the patients (reference)",
}
STATUS_COLOURS = {"pass": ("#e8f5e9", "#1b5e20"), "fail": ("#ffebee", "#b71c1c"), "unverified": ("#fff8e1", "#8d6e00")}


@dataclass(frozen=True)
class CheckText:
    """How a verdict check (report.judge) reads for a non-specialist."""

    title: str
    meaning: str
    measured: str  # what the signed difference is, in the check's direction


CHECK_TEXT: dict[str, CheckText] = {
    "forget accuracy": CheckText(
        "Forgetting",
        "The updated model recognises the erased images no better (and no worse) than a model that never saw them.",
        "accuracy on erased images, updated − reference",
    ),
    "membership inference": CheckText(
        "Privacy",
        "An attacker probing the model judges the erased images 'not used in training' as often as with the "
        "reference model.",
        "membership score, updated − reference",
    ),
    "test accuracy": CheckText(
        "Quality",
        "Accuracy on new patients is not noticeably lower than the reference model's.",
        "accuracy drop on new patients, reference − updated",
    ),
    "missed disease (test FNR)": CheckText(
        "Patient safety",
        "The share of disease cases missed on new patients is not noticeably higher than with the reference model.",
        "extra missed disease on new patients, updated − reference",
    ),
}


def check_text(c: Check) -> CheckText:
    return CHECK_TEXT.get(c.name, CheckText(c.name, c.description, "difference to the reference"))


def two_sided(c: Check) -> bool:
    return CHECK_STATISTICS.get(c.name, ("", 1, False))[2]


def check_difference(report: UnlearnReport, c: Check) -> float | None:
    """The check's difference, signed in the check's direction (judge keeps only |difference| for the
    two-sided checks; the sign, which says *which way* the model differs, comes from the gap row)."""
    metric, sign, _ = CHECK_STATISTICS.get(c.name, (c.name, 1, False))
    gap = next((g for g in report.gaps if g.metric == metric), None)
    if gap is None or gap.unlearned is None or gap.retrain is None:
        return c.value
    return sign * (gap.unlearned - gap.retrain)


METHOD_PLAIN: dict[str, str] = {
    "retrain": "retrained the model from scratch without the patients' images (exact erasure)",
    "finetune": "continued training on the remaining images only, so the model drifts away from the erased ones",
    "neggrad+": "trained the model to do worse on the erased images while keeping it right on the remaining ones",
    "random-label": "re-taught the erased images with deliberately wrong labels, while keeping the remaining ones",
    "salun": "changed only the parts of the model most tied to the erased images, re-teaching them with wrong labels",
    "salun-cra": "changed only the parts of the model most tied to the erased images; disease cases among them are "
    "made uncertain rather than relabelled 'healthy', to protect patient safety",
    "scrub": "moved the model away from its old answers on the erased images while keeping its answers elsewhere",
    "ssd": "weakened the model's internal weights that matter far more for the erased images than for the rest",
    "l1-sparse": "continued training on the remaining images with a penalty that prunes what the model memorised",
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #212121;
       background: #fafafa; margin: 0; line-height: 1.45; font-size: 15px; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #eceff1; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.subtitle { color: #616161; margin: 0 0 16px; }
.verdict { border-left: 8px solid; border-radius: 6px; padding: 14px 18px; margin: 12px 0 8px; }
.verdict .headline { font-size: 20px; font-weight: 600; margin: 0; }
.verdict .technical { margin: 6px 0 0; font-size: 14px; }
.verdict .certainty { margin: 6px 0 0; font-size: 14px; }
p.explain { margin: 6px 0; }
p.note { color: #616161; font-size: 13px; margin: 4px 0 10px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e0e0e0; text-align: right; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
td.num { white-space: nowrap; }
table.checks td:first-child { width: 40%; }
.sub { display: block; color: #757575; font-size: 12px; white-space: normal; max-width: 190px; margin-left: auto; }
table.facts td { text-align: left; }
table.facts td:first-child { color: #616161; white-space: nowrap; padding-right: 18px; }
table.wide { width: 100%; }
.ci { display: block; color: #757575; font-size: 12px; white-space: nowrap; }
.pass { color: #1b5e20; font-weight: 600; }
.fail { color: #b71c1c; font-weight: 600; }
.unsure { color: #8d6e00; font-weight: 600; }
.mono { font-family: "SFMono-Regular", Consolas, "Liberation Mono", monospace; font-size: 12px;
        word-break: break-all; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceff1; }
figcaption { color: #616161; font-size: 13px; margin-top: 4px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin: 0 4px 0 10px;
          vertical-align: -1px; }
dl.glossary dt { font-weight: 600; margin-top: 6px; }
dl.glossary dd { margin: 0 0 0 18px; color: #424242; }
footer { color: #9e9e9e; font-size: 12px; margin-top: 32px; }
"""


# --------------------------------------------------------------------------- formatting helpers


def esc(value: object) -> str:
    """Escape any report value for HTML text and attribute positions."""
    return escape(str(value), quote=True)


def quoted(label: str) -> str:
    """A class name in quotes: MedMNIST names such as 'normal, benign' contain commas."""
    return f"“{label}”"


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def pts(x: float | None) -> str:
    """A difference of two rates, in percentage points (signed)."""
    return "—" if x is None else f"{100 * x:+.1f} pts"


def points(x: float | None) -> str:
    """A non-negative spread of two rates, in percentage points."""
    return "—" if x is None else f"{100 * x:.1f} pts"


def ci_text(ci: Interval | None, points: bool = False) -> str:
    if ci is None:
        return ""
    if points:
        return f"95%: {100 * ci.low:+.1f} to {100 * ci.high:+.1f} pts"
    return f"95%: {100 * ci.low:.1f}–{100 * ci.high:.1f}%"


def value_cell(value: str, ci: str = "") -> str:
    extra = f'<span class="ci">{esc(ci)}</span>' if ci else ""
    return f"<td>{esc(value)}{extra}</td>"


def models_of(report: UnlearnReport) -> dict[str, ModelEval]:
    models = {"original": report.original, "unlearned": report.unlearned}
    if report.retrain is not None:
        models["retrain"] = report.retrain
    return models


def intervals_of(report: UnlearnReport, model: str) -> ModelIntervals | None:
    if report.analysis is None:
        return None
    return getattr(report.analysis.intervals, model)


def legend_html(models: Sequence[str]) -> str:
    return "".join(
        f'<span class="swatch" style="background:{MODEL_COLOURS[m]}"></span>{esc(MODEL_LABELS[m])}' for m in models
    )


# --------------------------------------------------------------------------- plots (matplotlib, Agg canvas)


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple[Figure, np.ndarray]:
    """A matplotlib figure on the Agg canvas, without pyplot: rendering never touches the global backend
    of a caller's process (a notebook, a GUI) and needs no display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def figure_html(fig: Figure, alt: str, caption: str) -> str:
    """Embed a figure as a base64 PNG with alt text and a plain-language caption."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (
        f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def _style_axis(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="#eeeeee", zorder=0)
    ax.set_axisbelow(True)


@dataclass(frozen=True)
class Measure:
    """One headline number: how to read it from a model's evaluation, its interval, and its gap row."""

    name: str  # for the table; "{pos}" is replaced by the disease class
    short: str  # for the plot axis
    value: Callable[[ModelEval], float | None]
    interval: Callable[[ModelIntervals], Interval | None]
    difference: str  # key of the paired unlearned - retrain interval in ConfidenceIntervals.differences
    in_plot: bool = True


MEASURES: list[Measure] = [
    Measure(
        "Accuracy on the remaining training images",
        "Accuracy, remaining training images",
        lambda e: e.retain.accuracy,
        lambda i: i.retain.accuracy,
        "retain accuracy",
    ),
    Measure(
        "Accuracy on the erased images",
        "Accuracy, erased images",
        lambda e: e.forget.accuracy,
        lambda i: i.forget.accuracy,
        "forget accuracy",
    ),
    Measure(
        "Accuracy on new patients (test)",
        "Accuracy, new patients",
        lambda e: e.test.accuracy,
        lambda i: i.test.accuracy,
        "test accuracy",
    ),
    Measure(
        "Missed disease ({pos}) on new patients (FNR)",
        "Missed disease, new patients",
        lambda e: e.test.fnr,
        lambda i: i.test.fnr,
        "test fnr",
    ),
    Measure(
        "False alarms on new patients (FPR)",
        "False alarms, new patients",
        lambda e: e.test.fpr,
        lambda i: i.test.fpr,
        "test fpr",
    ),
    Measure(
        "Missed disease among the erased images",
        "Missed disease, erased images",
        lambda e: e.forget.fnr,
        lambda i: i.forget.fnr,
        "forget fnr",
        in_plot=False,
    ),
    Measure(
        "Erased images the attacker judges 'not used' (membership score)",
        "Erased images judged 'not used'",
        lambda e: e.mia.forget_non_member_rate,
        lambda i: i.mia_efficacy,
        "forget mia",
    ),
]


def plot_metrics(report: UnlearnReport) -> Figure:
    """Each headline rate for the three models, as points with 95% error bars, retrain as the reference."""
    models = models_of(report)
    measures = [m for m in MEASURES if m.in_plot]
    fig, axes = _figure(10, 0.55 * len(measures) + 1.2)
    ax = axes[0, 0]
    offsets = {"original": -0.22, "unlearned": 0.0, "retrain": 0.22}
    for m, ev in models.items():
        iv = intervals_of(report, m)
        for row, measure in enumerate(measures):
            v = measure.value(ev)
            if v is None:
                continue
            y = row + offsets[m]
            ci = measure.interval(iv) if iv is not None else None
            if ci is not None:
                ax.errorbar(
                    [100 * v],
                    [y],
                    xerr=[[100 * max(v - ci.low, 0)], [100 * max(ci.high - v, 0)]],
                    fmt="none",
                    ecolor=MODEL_COLOURS[m],
                    elinewidth=2,
                    capsize=3,
                    zorder=2,
                )
            ax.plot([100 * v], [y], "o", color=MODEL_COLOURS[m], markersize=7, zorder=3)
    ax.set_yticks(range(len(measures)), [measure.short for measure in measures])
    ax.invert_yaxis()
    ax.set_xlim(-2, 102)
    ax.set_xlabel("percent (bars: 95% range)")
    _style_axis(ax)
    for m in models:
        ax.plot([], [], "o", color=MODEL_COLOURS[m], label=MODEL_LABELS[m])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False, fontsize=9)
    return fig


def plot_checks(report: UnlearnReport) -> Figure:
    """Each verdict check's difference to retrain with its 95% range, against the allowed zone."""
    checks = [(c, d) for c in report.verdict.checks if (d := check_difference(report, c)) is not None]
    fig, axes = _figure(10, 0.75 * len(checks) + 1.0)
    ax = axes[0, 0]
    extent = [0.05] + [abs(x) for c, d in checks for x in (c.limit, d, *((c.ci.low, c.ci.high) if c.ci else ()))]
    span = 100 * max(extent) * 1.1  # percentage points, symmetric around 0
    for row, (c, d) in enumerate(checks):
        low = -100 * c.limit if two_sided(c) else -span
        ax.barh(row, 100 * c.limit - low, left=low, height=0.6, color="#e8f5e9", edgecolor="#a5d6a7", zorder=1)
        colour = "#1b5e20" if c.passed else "#b71c1c"
        if c.ci is not None:
            ax.plot([100 * c.ci.low, 100 * c.ci.high], [row, row], color=colour, lw=3, solid_capstyle="butt", zorder=2)
        ax.plot([100 * d], [row], "D", color=colour, markersize=8, zorder=3)
    ax.axvline(0, color="#757575", lw=1)
    labels = [f"{check_text(c).title}\n({check_text(c).measured})" for c, _ in checks]
    ax.set_yticks(range(len(checks)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(-span, span)
    ax.set_xlabel("percentage points (diamond: measured; line: 95% range; green: allowed)")
    _style_axis(ax)
    return fig


def plot_confusion(report: UnlearnReport) -> Figure:
    """Confusion matrices on new patients (test) for each model, counts in the cells."""
    models = models_of(report)
    fig, axes = _figure(3.4 * len(models), 3.3, ncols=len(models))
    short = [c if len(c) <= 12 else c[:11] + "…" for c in report.classes]
    for ax, (m, ev) in zip(axes[0], models.items(), strict=True):
        cm = ev.test.confusion
        if not cm:
            ax.set_axis_off()
            continue
        vmax = max(max(r) for r in cm) or 1
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=vmax)
        for i, row in enumerate(cm):
            for j, n in enumerate(row):
                ax.text(j, i, str(n), ha="center", va="center", color="white" if n > 0.6 * vmax else "#212121")
        ax.set_xticks(
            range(len(short)), short, rotation=30 if len(short) > 2 else 0, ha="right" if len(short) > 2 else "center"
        )
        ax.set_yticks(range(len(short)), short)
        ax.set_xlabel("model's answer")
        ax.set_ylabel("true diagnosis")
        ax.set_title(MODEL_LABELS[m].split(" (")[0], fontsize=10, color=TITLE_COLOURS[m])
    return fig


def plot_membership(report: UnlearnReport) -> Figure:
    """Membership-attack scores of erased images vs never-seen test images, per model."""
    models = models_of(report)
    fig, axes = _figure(3.4 * len(models), 2.8, ncols=len(models))
    bins = [i / 20 for i in range(21)]
    for ax, (m, ev) in zip(axes[0], models.items(), strict=True):
        if ev.mia.test_scores:
            ax.hist(ev.mia.test_scores, bins=bins, density=True, color="#bdbdbd", label="never-seen patients")
        if ev.mia.forget_scores:
            ax.hist(
                ev.mia.forget_scores,
                bins=bins,
                density=True,
                histtype="step",
                lw=2,
                color=MODEL_COLOURS["unlearned"],
                label="erased images",
            )
        ax.axvline(0.5, color="#616161", ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_yticks([])
        ax.set_xlabel("attacker's 'was in training' score")
        judged = f"\n{pct(ev.mia.forget_non_member_rate, 0)} of erased images judged 'not used'"
        ax.set_title(MODEL_LABELS[m].split(" (")[0] + judged, fontsize=10, color=TITLE_COLOURS[m])
        ax.spines[["top", "right", "left"]].set_visible(False)
    axes[0, 0].legend(fontsize=8, frameon=False, loc="upper left")
    return fig


def plot_slices(names: Sequence[str], per_model: dict[str, list[SliceMetrics | None]], title: str) -> Figure:
    """Grouped bars of accuracy and missed disease for each slice (difficulty third or patient group)."""
    fig, axes = _figure(10, 3.3, ncols=2)
    width = 0.8 / max(len(per_model), 1)
    for ax, (metric, label) in zip(axes[0], (("accuracy", "accuracy"), ("fnr", "missed disease")), strict=True):
        for k, (m, slices) in enumerate(per_model.items()):
            xs, ys = [], []
            for i, s in enumerate(slices):
                v = getattr(s, metric) if s is not None else None
                if v is not None:
                    xs.append(i - 0.4 + width * (k + 0.5))
                    ys.append(100 * v)
            bars = ax.bar(xs, ys, width=width * 0.95, color=MODEL_COLOURS[m], label=MODEL_LABELS[m], zorder=2)
            # Values on the bars: a 0% bar is otherwise invisible and looks like missing data.
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1, color="#424242")
        ax.set_xticks(range(len(names)), names)
        ax.set_ylim(0, 112)
        ax.set_ylabel(f"{label} (%)")
        ax.set_title(f"{title}: {label}", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#eeeeee", zorder=0)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(per_model), frameon=False, fontsize=9)
    return fig


# --------------------------------------------------------------------------- sections


def plain_verdict(report: UnlearnReport) -> str:
    """The verdict as one sentence without jargon."""
    v = report.verdict
    if v.status == "pass":
        return (
            "Erasure confirmed: the updated model behaves like a model that never saw these patients, "
            "and it is as accurate and as safe for patients, within the agreed limits."
        )
    if v.status == "fail":
        failed = [check_text(c).title.lower() for c in v.checks if not c.passed]
        return (
            "Erasure NOT confirmed: the updated model still differs from a model that never saw these patients "
            f"({', '.join(failed)})."
        )
    return (
        "Erasure not verified: the updated model was not compared with a model retrained without these patients, "
        "so there is no evidence yet that their data were forgotten."
    )


def certainty_sentence(report: UnlearnReport) -> str:
    """How sure the verdict is, from the checks' 95% ranges (empty if no ranges were computed)."""
    rated = [c for c in report.verdict.checks if c.ci_conclusion is not None]
    if not rated:
        return ""
    unsure = [check_text(c).title.lower() for c in rated if c.ci_conclusion == "inconclusive"]
    if not unsure:
        return "Every check is clear even allowing for chance: its whole 95% range is on the same side of the limit."
    return (
        f"{len(unsure)} of {len(rated)} checks ({', '.join(unsure)}) are too close to call: with this many images, "
        "chance alone could move them across the limit."
    )


def section_header(report: UnlearnReport) -> str:
    r = report
    when = r.provenance.created_at
    return (
        "<h1>Erasure verification report</h1>"
        f'<p class="subtitle">Request {esc(r.request.request_id or "(no id)")} · dataset {esc(r.provenance.dataset)}'
        f" · produced {esc(when)} by medforget {esc(r.provenance.medforget_version)}</p>"
    )


def section_verdict(report: UnlearnReport) -> str:
    bg, fg = STATUS_COLOURS[report.verdict.status]
    certainty = certainty_sentence(report)
    return (
        f'<section class="verdict" style="background:{bg};border-color:{fg};color:{fg}">'
        f'<p class="headline">{esc(plain_verdict(report))}</p>'
        f'<p class="technical">Technical verdict: {esc(report.verdict.summary)}</p>'
        + (f'<p class="certainty">{esc(certainty)}</p>' if certainty else "")
        + "</section>"
    )


def section_what_was_done(report: UnlearnReport) -> str:
    r = report
    req = r.request
    method_text = METHOD_PLAIN.get(r.method, f"applied the unlearning method {r.method}")
    counts = "; ".join(f"{c.n} {quoted(c.label)}" for c in req.counts) or "—"
    pos = " or ".join(quoted(p) for p in r.positive)
    cost = r.cost
    if r.retrain is not None:
        compared = (
            "To check the result, the updated model was compared with a <em>reference model retrained from "
            "scratch without these patients</em> — the model the hospital would have had if it had never received "
            "their images. Retraining is the only method that is certain to erase, but it is slow; the faster method "
            "passes only if it ends up close to the reference."
        )
    else:
        compared = (
            "The updated model was <strong>not</strong> compared with a model retrained from scratch without these "
            "patients, so this report cannot show that their data were forgotten."
        )
    speed = (
        f" The erasure took {cost.method_seconds:.0f} s; retraining from scratch took {cost.retrain_seconds:.0f} s "
        f"({cost.speedup:.1f} times as long)."
        if cost.retrain_seconds and cost.speedup
        else f" The erasure took {cost.method_seconds:.0f} s."
    )
    if cost.tuning_seconds is not None:
        speed += f" Its settings were tuned once beforehand, which took {cost.tuning_seconds:.0f} s" + (
            f" and is repaid after {cost.tuning_break_even_requests:.1f} requests."
            if cost.tuning_break_even_requests is not None
            else "."
        )
    received = f", received {req.received_at:%Y-%m-%d}" if req.received_at else ""
    reason = f" Reason given: {esc(req.reason)}." if req.reason else ""
    previously = (
        f" {req.previously_forgotten} images erased by earlier requests stay excluded."
        if req.previously_forgotten
        else ""
    )
    facts = [
        ("Request", f"{req.request_id or '(no id)'}{received}"),
        ("Erased", f"{req.n_samples} images of {req.n_patients} patients ({counts})"),
        ("Method", r.method),
        ("Model's task", f"{len(r.classes)} classes: {', '.join(quoted(c) for c in r.classes)}; disease: {pos}"),
        ("Reference", cost.baseline_source),
    ]
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in facts)
    return (
        "<h2>What was done</h2>"
        f'<p class="explain">A deletion request (GDPR Art. 17, right to erasure) asked to remove '
        f"{req.n_samples} images of {req.n_patients} patients from an image classifier trained on "
        f"{esc(r.provenance.dataset)}.{reason}{previously} medforget {esc(method_text)} "
        f"(method <em>{esc(r.method)}</em>).{esc(speed)}</p>"
        f'<p class="explain">{compared}</p>'
        f'<table class="facts">{rows}</table>'
    )


def section_checks(report: UnlearnReport) -> str:
    checks = report.verdict.checks
    if not checks:
        return "<h2>The checks</h2><p class='explain'>No checks could be made without the reference model.</p>"
    rows = []
    for c in checks:
        text = check_text(c)
        result = '<span class="pass">✓ met</span>' if c.passed else '<span class="fail">✗ not met</span>'
        certainty = {
            "within limit": '<span class="pass">clear</span>',
            "beyond limit": '<span class="fail">clearly not met</span>',
            "inconclusive": '<span class="unsure">too close to call</span>',
            None: "—",
        }[c.ci_conclusion]
        limit = f"{'within ±' if two_sided(c) else 'at most +'}{100 * c.limit:.1f} pts"
        rows.append(
            f"<tr><td><strong>{esc(text.title)}</strong><br><small>{esc(text.meaning)}</small></td>"
            f'<td class="num">{esc(pts(check_difference(report, c)))}<span class="sub">{esc(text.measured)}</span></td>'
            f'<td class="num">{esc(limit)}</td>'
            f'<td class="num">{esc(ci_text(c.ci, points=True).removeprefix("95%: ") or "—")}</td>'
            f'<td class="num">{result}</td><td class="num">{certainty}</td></tr>'
        )
    table = (
        '<table class="wide checks"><tr><th>Check</th><th>Measured</th><th>Allowed</th>'
        "<th>95% range</th><th>Result</th><th>How sure</th></tr>" + "".join(rows) + "</table>"
    )
    plot = figure_html(
        plot_checks(report),
        "Differences to the reference model with 95% ranges against the allowed zones",
        "Each diamond is the measured difference to the reference model; the line is the range it could "
        "plausibly take by chance (95%); the green zone is what the check allows. A line entirely inside green "
        "is a clear pass; a line crossing the edge of green means more images would be needed to be sure.",
    )
    return (
        "<h2>The checks</h2>"
        '<p class="explain">Each check compares the updated model with the reference model. The result is '
        "decided on the measured difference; the 95% range shows how much that difference could change with "
        "another sample of images of the same kind, and so how sure the result is.</p>" + table + plot
    )


def section_metrics_table(report: UnlearnReport) -> str:
    models = models_of(report)
    pos = ", ".join(report.positive)
    head = "".join(f"<th>{esc(MODEL_LABELS[m])}</th>" for m in models)
    diff_head = "<th>Updated − reference</th>" if "retrain" in models else ""
    body = []
    differences = report.analysis.intervals.differences if report.analysis else {}
    for measure in MEASURES:
        cells = []
        for m, ev in models.items():
            iv = intervals_of(report, m)
            cells.append(value_cell(pct(measure.value(ev)), ci_text(measure.interval(iv)) if iv is not None else ""))
        diff = ""
        if "retrain" in models:
            u, r = measure.value(models["unlearned"]), measure.value(models["retrain"])
            paired = differences.get(measure.difference)
            diff = value_cell(pts(None if u is None or r is None else u - r), ci_text(paired, points=True))
        body.append(f"<tr><td>{esc(measure.name.format(pos=pos))}</td>{''.join(cells)}{diff}</tr>")
    cost_cells = "".join(
        f"<td>{ev.test.clinical_cost:.3f}</td>" if ev.test.clinical_cost is not None else "<td>—</td>"
        for ev in models.values()
    )
    body.append(
        f"<tr><td>Clinical cost per new patient (missed disease counts {report.fn_cost:g}×, false alarm "
        f"{report.fp_cost:g}×; lower is better)</td>{cost_cells}{'<td></td>' if diff_head else ''}</tr>"
    )
    return (
        "<h2>The three models side by side</h2>"
        '<p class="explain">Small grey text: the 95% range of each number. The updated model should be close to '
        "the reference (retrained) model, not to the original: the original still knows the erased patients.</p>"
        f'<table class="wide"><tr><th>Measure</th>{head}{diff_head}</tr>{"".join(body)}</table>'
        + figure_html(
            plot_metrics(report),
            "Headline measures of the three models with 95% ranges",
            "Dots: measured value; bars: 95% range. Where the updated model's (blue) range overlaps the "
            "reference's (orange), the difference could be chance.",
        )
    )


def section_confusion(report: UnlearnReport) -> str:
    return "<h2>Where the models go wrong on new patients</h2>" + figure_html(
        plot_confusion(report),
        "Confusion matrices of the three models on the test set",
        "Rows: the true diagnosis; columns: the model's answer. Counts on the diagonal are correct; a disease "
        "case in a 'healthy' column is a missed disease.",
    )


def section_membership(report: UnlearnReport) -> str:
    return (
        "<h2>Can an attacker tell the erased images were used?</h2>"
        '<p class="explain">A membership attack learns from the model\'s answers to guess whether an image was '
        "in its training data. After a good erasure the erased images should look like images of patients the "
        "model never saw, as they do for the retrained reference.</p>"
        + figure_html(
            plot_membership(report),
            "Distributions of membership-attack scores for erased images and never-seen patients",
            "Grey: patients never used for training. Blue line: the erased images. Scores right of the dashed "
            "line are judged 'was in training'. The original model should show the blue line shifted right; the "
            "updated model should look like the reference.",
        )
    )


def _slice_table(
    names: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    per_model: dict[str, list[SliceMetrics | None]],
    first_header: str,
) -> str:
    head = "".join(f"<th>{esc(MODEL_LABELS[m].split(' (')[0])}<br>accuracy · missed</th>" for m in per_model)
    rows = []
    for i, name in enumerate(names):
        n, n_pos = sizes[i]
        cells = "".join(
            f"<td>{esc(pct(s.accuracy))} · {esc(pct(s.fnr))}</td>" if s is not None else "<td>—</td>"
            for s in (per_model[m][i] for m in per_model)
        )
        rows.append(f"<tr><td>{esc(name)}</td><td>{n} ({n_pos})</td>{cells}</tr>")
    return (
        f'<table class="wide"><tr><th>{esc(first_header)}</th><th>images (disease)</th>{head}</tr>'
        + "".join(rows)
        + "</table>"
    )


def section_difficulty(report: UnlearnReport) -> str:
    title = "<h2>Erased images by difficulty</h2>"
    diff: DifficultyAnalysis | None = report.analysis.difficulty if report.analysis else None
    if diff is None:
        return title + '<p class="explain">Not available for this report.</p>'
    names = [
        f"{s.name} (loss {s.loss_min:.2f}–{s.loss_max:.2f})" if s.loss_min is not None else s.name for s in diff.slices
    ]
    per_model: dict[str, list[SliceMetrics | None]] = {
        m: [getattr(s, m) for s in diff.slices] for m in models_of(report)
    }
    return (
        title + '<p class="explain">The erased images are split into thirds by how confidently the original model '
        "handled them, measured by its loss (0 = sure and right; higher = unsure or wrong). A method can forget "
        "easy and hard images differently; the updated model should match the reference in each third, not only "
        "on average.</p>"
        + _slice_table(names, [(s.n, s.n_positive) for s in diff.slices], per_model, "third")
        + figure_html(
            plot_slices([s.name for s in diff.slices], per_model, "Erased images"),
            "Accuracy and missed disease on the erased images by difficulty third",
            "Bars per third of the erased images, from easy to hard. Missed disease is shown where a third "
            "contains disease cases.",
        )
    )


def _attribute_block(a: AttributeAnalysis, report: UnlearnReport) -> str:
    models = models_of(report)
    set_label = "erased images" if a.set == "forget" else "new patients (test)"
    names = [g.group for g in a.groups]
    per_model: dict[str, list[SliceMetrics | None]] = {m: [getattr(g, m) for g in a.groups] for m in models}
    gaps = {"original": a.gap_original, "unlearned": a.gap_unlearned, "retrain": a.gap_retrain}
    gap_rows = "".join(
        f"<tr><td>{esc(MODEL_LABELS[m])}</td><td>{esc(points(g.accuracy))}</td><td>{esc(points(g.fnr))}</td></tr>"
        for m in models
        if (g := gaps[m]) is not None
    )
    return (
        f"<h3>{esc(a.attribute)} — {esc(set_label)}</h3>"
        + _slice_table(names, [(g.n, g.n_positive) for g in a.groups], per_model, a.attribute)
        + "<table><tr><th>Gap between groups (best − worst)</th><th>accuracy</th><th>missed disease</th></tr>"
        + gap_rows
        + "</table>"
        + figure_html(
            plot_slices(names, per_model, f"{a.attribute}, {set_label}"),
            f"Accuracy and missed disease by {a.attribute} on the {set_label}",
            f"Bars per {a.attribute} group. The updated model should not serve one group worse than the "
            "reference does.",
        )
    )


def section_groups(report: UnlearnReport) -> str:
    title = "<h2>Results by patient group</h2>"
    analysis = report.analysis
    if analysis is None or not analysis.attributes:
        return title + (
            '<p class="explain">No patient attributes (such as sex or hospital site) were given in a manifest, '
            "so results by group are not shown.</p>"
        )
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in analysis.notes)
    return (
        title + '<p class="explain">Erasure must not shift errors onto one group of patients. For each attribute '
        "recorded in the manifest: accuracy and missed disease per group, and the gap between the best- and "
        f"worst-served group (groups with fewer than {GROUP_GAP_MIN_N} images, or {GROUP_GAP_MIN_N} disease cases "
        "for missed disease, are "
        "shown but not counted in the gap).</p>"
        + notes
        + "".join(_attribute_block(a, report) for a in analysis.attributes)
    )


def section_provenance(report: UnlearnReport, ledger_entry: int | None) -> str:
    r, p = report, report.provenance
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
        ("Output model", p.output_checkpoint),
        ("Output model SHA-256", p.output_sha256),
        ("Reference model", r.cost.baseline_source),
        ("Reference model SHA-256", p.baseline_sha256 or "—"),
        ("Ledger position", str(ledger_entry) if ledger_entry is not None else "not recorded in a ledger"),
        ("Report format", r.format),
        ("medforget version", p.medforget_version),
        ("Device", p.device),
        ("Date", p.created_at),
    ]
    if r.analysis is not None:
        iv = r.analysis.intervals
        rows.append(("95% ranges", f"{iv.method}; {iv.n_resamples} resamples, seed {iv.seed}"))
    mono = ' class="mono"'
    body = "".join(
        f"<tr><td>{esc(k)}</td><td{mono if 'SHA' in k or 'fingerprint' in k else ''}>{esc(v)}</td></tr>"
        for k, v in rows
    )
    warnings = "".join(f'<p class="note">Warning: {esc(w)}</p>' for w in r.request.warnings)
    return (
        "<h2>Provenance (for audit)</h2>"
        '<p class="explain">These fingerprints identify exactly which models and data this report is about; '
        "any change to a model file changes its SHA-256.</p>"
        f'<table class="facts">{body}</table>{warnings}'
    )


def section_glossary(report: UnlearnReport) -> str:
    pos = " or ".join(report.positive)
    resamples = report.analysis.intervals.n_resamples if report.analysis else 1000
    terms = [
        (
            "Reference (retrained) model",
            "A model trained from scratch on the same data minus the erased patients: "
            "what the model would be had it never seen them.",
        ),
        ("Accuracy", "The share of images the model classifies correctly."),
        (
            "Missed disease (false-negative rate, FNR)",
            f"The share of disease cases ({pos}) the model calls healthy. The most harmful error in medicine.",
        ),
        ("False alarm (false-positive rate, FPR)", "The share of healthy cases the model flags as disease."),
        (
            "Membership score",
            "The share of erased images that a membership attack judges 'not used in training'. "
            "It should match the reference model's.",
        ),
        (
            "95% range (confidence interval)",
            "The range a number could plausibly take with another sample of images "
            f"of the same kind, estimated by resampling the images {resamples} times (bootstrap).",
        ),
        ("pts", "Percentage points: the difference of two percentages (12% vs 10% is +2 pts)."),
    ]
    items = "".join(f"<dt>{esc(t)}</dt><dd>{esc(d)}</dd>" for t, d in terms)
    return f'<h2>Words used in this report</h2><dl class="glossary">{items}</dl>'


# --------------------------------------------------------------------------- page


def render_unlearn_html(report: UnlearnReport, ledger_entry: int | None = None) -> str:
    """The whole report as one self-contained HTML document (no external resources)."""
    sections = [
        section_header(report),
        section_verdict(report),
        section_what_was_done(report),
        section_checks(report),
        section_metrics_table(report),
        section_confusion(report),
        section_membership(report),
        section_difficulty(report),
        section_groups(report),
        section_provenance(report, ledger_entry),
        section_glossary(report),
    ]
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    title = f"Erasure report {report.request.request_id or ''}".strip()
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}"
        f"<footer>Generated {esc(generated)} by medforget {esc(report.provenance.medforget_version)} from report "
        f"format {esc(report.format)}.</footer></main></body></html>\n"
    )


def write_unlearn_html(
    report: UnlearnReport, path: str | Path, force: bool = False, ledger_entry: int | None = None
) -> Path:
    """Render ``report`` and write it to ``path`` atomically (never replaces a file without ``force``)."""
    path = Path(path)
    text = render_unlearn_html(report, ledger_entry)
    with atomic_path(path, force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- audit page


_AUDIT_STATUS = {
    "pass": ("pass", "passed"),
    "fail": ("fail", "FAILED"),
    "inconclusive": ("unsure", "inconclusive"),
    "skipped": ("sub", "not asked for"),
}


def _audit_verdict(report: AuditReport) -> str:
    colour = {"pass": ("#1b5e20", "#e8f5e9"), "fail": ("#b71c1c", "#ffebee"), "inconclusive": ("#8d6e00", "#fff8e1")}
    fg, bg = colour.get(report.verdict.status, ("#424242", "#f5f5f5"))
    return (
        f'<div class="verdict" style="border-color:{fg};background:{bg}">'
        f'<p class="headline" style="color:{fg}">{esc(report.verdict.summary)}</p></div>'
    )


def _audit_checks(report: AuditReport) -> str:
    rows = "".join(
        f"<tr><td>{esc(c.name)}</td><td class='{_AUDIT_STATUS[c.status][0]}'>{esc(_AUDIT_STATUS[c.status][1])}</td>"
        f"<td style='text-align:left'>{esc(c.summary)}</td></tr>"
        for c in report.checks
    )
    return (
        "<h2>The checks</h2><p class='explain'>Integrity: the file is exactly the one medforget wrote. Lineage: the "
        "deletion ledger records an unbroken history from this file back to the original training. Request: every "
        "person in the request is recorded as erased. Membership: an attacker cannot tell the erased images from "
        "images the model never saw.</p>"
        "<table class='wide'><tr><th>Check</th><th>Result</th><th style='text-align:left'>Details</th></tr>"
        f"{rows}</table>"
    )


def _audit_lineage(report: AuditReport) -> str:
    lin = report.lineage
    if lin is None:
        return ""
    rows = "".join(
        f"<tr><td>{lk.seq}</td><td>{esc(lk.entry_type)}</td><td>{esc(lk.created_at)}</td><td>{esc(lk.method or '—')}"
        f"</td><td>{esc(lk.request_id or '—')}</td><td>{lk.n_samples}</td><td class='mono'>"
        f"{esc((lk.output_sha256 or '')[:16])}</td><td class='{'fail' if lk.problems else 'pass'}'>"
        f"{esc('; '.join(lk.problems) or 'ok')}</td></tr>"
        for lk in lin.chain
    )
    problems = "".join(f"<li>{esc(p.kind)} at line {p.line}: {esc(p.message)}</li>" for p in lin.ledger_problems)
    problems += "".join(f"<li>{esc(p)}</li>" for p in lin.problems)
    return (
        "<h2>History in the deletion ledger</h2>"
        f"<p class='explain'>Ledger {esc(lin.ledger)}: {lin.n_entries} entries, "
        f"{'intact' if lin.ledger_ok else 'TAMPERED'}"
        f"{'' if lin.macs_checked else ' (seals not checked: no key given)'}; newest first.</p>"
        "<table class='wide'><tr><th>#</th><th>Type</th><th>When</th><th>Method</th><th>Request</th>"
        f"<th>Erased images</th><th>Output file</th><th>Link</th></tr>{rows}</table>"
        + (f"<ul>{problems}</ul>" if problems else "")
    )


def _audit_membership(report: AuditReport) -> str:
    pop = report.population_mia
    if pop is None:
        return ""
    fig, axes = _figure(7.5, 2.6)
    ax = axes[0, 0]
    ax.hist(
        [s.member_score for s in pop.requested],
        bins=20,
        range=(0, 1),
        color=MODEL_COLOURS["unlearned"],
        alpha=0.8,
        label="requested (erased) images",
    )
    ax.axvline(0.5, color="#616161", linestyle="--", linewidth=1)
    ax.set_xlabel("attacker's membership score (right of the dashed line: judged 'used in training')")
    ax.set_ylabel("images")
    ax.legend(frameon=False)
    _style_axis(ax)
    text = (
        f"<p class='explain'>An attacker trained to tell training images from unseen ones (its own accuracy, AUC "
        f"{pop.attack_auc:.2f}; 0.5 means it sees nothing) calls {pct(pop.requested_non_member_rate)} of the "
        f"{pop.n_requested} requested images 'not used in training', against {pct(pop.reference_non_member_rate)} "
        f"of {pop.n_reference} images the model truly never saw (one-sided p = {pop.p_value:.3g}).</p>"
    )
    if report.lira is not None:
        lira = report.lira
        text += (
            f"<p class='explain'>Shadow-model attack (LiRA, {lira.n_shadows} shadow models): "
            f"{pct(lira.fraction_lr_above_1_requested)} of requested images look more like members than not, "
            f"against {pct(lira.fraction_lr_above_1_reference)} of unseen images (p = {lira.p_value:.3g}); "
            + ", ".join(f"{pct(x.tpr)} found at {x.target_fpr:.1%} false alarms" for x in lira.tpr_at_fpr)
            + ".</p>"
        )
    return (
        "<h2>Do the erased images leave a trace?</h2>"
        + text
        + figure_html(
            fig, "histogram of membership scores", "How member-like each requested image looks to the attacker."
        )
    )


def _audit_provenance(report: AuditReport) -> str:
    integ = report.integrity
    rows = [
        ("File", report.checkpoint),
        ("SHA-256", report.sha256),
        ("Weights hash", integ.weights_sha256 or "—"),
        ("Signature", "verified" if integ.signature_verified else "present, not checked" if integ.signed else "none"),
        ("Dataset", report.dataset or "—"),
        ("Request", report.request.request_id if report.request and report.request.request_id else "—"),
        ("Audited", f"{report.created_at} by medforget {report.medforget_version} in {report.seconds:.0f} s"),
    ]
    body = "".join(f"<tr><td>{esc(k)}</td><td class='mono'>{esc(v)}</td></tr>" for k, v in rows)
    return f"<h2>Provenance</h2><table class='facts'>{body}</table>"


def render_audit_html(report: AuditReport) -> str:
    """The audit as one self-contained HTML page for a data-protection officer."""
    sections = [
        f"<h1>Checkpoint audit</h1><p class='subtitle'>{esc(report.checkpoint)}</p>",
        _audit_verdict(report),
        _audit_checks(report),
        _audit_lineage(report),
        _audit_membership(report),
        _audit_provenance(report),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Audit {esc(report.checkpoint)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}<footer>Audit report format {esc(report.format)}.</footer></main></body>"
        "</html>\n"
    )


def write_audit_html(report: AuditReport, path: str | Path, force: bool = False) -> Path:
    path = Path(path)
    text = render_audit_html(report)
    with atomic_path(path, force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
