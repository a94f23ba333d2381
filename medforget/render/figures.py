"""The figures of the HTML pages, drawn with matplotlib on the Agg canvas and embedded as PNG data URIs.

Figures are made without pyplot: rendering never touches the global backend of a caller's process
(a notebook, a GUI) and needs no display. matplotlib is imported only when a figure is drawn. Every
function takes plain data (no report), so the pages decide what is shown and this module only how.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medforget.evaluation import Interval, SliceMetrics
from medforget.render.palette import INK, MODEL_COLOURS, TITLE_COLOURS

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PNG_DPI = 110


@dataclass(frozen=True)
class Estimate:
    """One model's value of one number: with its 95% interval, or (the retrained models) each model's value."""

    value: float | None
    ci: Interval | None = None
    values: tuple[float, ...] = field(default=())


@dataclass(frozen=True)
class CheckBar:
    """One verdict check on the checks figure, in its own unit (``scale`` 100: rates in points; 1: z-scores)."""

    label: str
    difference: float | None  # signed; None when the check could not be measured
    tolerance: float
    noise_margin: float | None
    two_sided: bool
    retrains: tuple[float, ...]  # each retrained model's offset from their average, signed like the difference
    colour: str
    scale: float = 100.0


@dataclass(frozen=True)
class Panel:
    """One model's panel of a per-model figure: its title and what it shows."""

    model: str  # original, unlearned or retrain: the panel's colour
    title: str


@dataclass(frozen=True)
class ConfusionPanel(Panel):
    matrix: Sequence[Sequence[float]] = ()  # rows: true class; columns: predicted (an average for the retrains)


@dataclass(frozen=True)
class MembershipPanel(Panel):
    forget_scores: Sequence[float] = ()
    test_scores: Sequence[float] = ()


def new_figure(
    width: float, height: float, ncols: int = 1, nrows: int = 1, height_ratios: Sequence[float] | None = None
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure on its own Agg canvas, with a grid of axes.

    Args:
        width: width in inches.
        height: height in inches.
        ncols: columns of axes.
        nrows: rows of axes.
        height_ratios: relative heights of the rows (equal if None).

    Returns:
        The figure and its axes as a 2-D array (``squeeze=False``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False, height_ratios=height_ratios)


def data_uri(fig: Figure) -> str:
    """A figure as a base64 PNG ``data:`` URI, so the page needs no external file.

    Args:
        fig: the figure to embed.

    Returns:
        ``data:image/png;base64,...``.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def style_axis(ax: Axes) -> None:
    """No top or right frame, a light vertical grid behind the data."""
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color=INK["grid"], zorder=0)
    ax.set_axisbelow(True)


def _draw_estimate(ax: Axes, est: Estimate, y: float, colour: str) -> None:
    """A dot with its 95% bar; for the retrained models each model's value, their range and their mean."""
    if est.value is None:
        return
    v = 100 * est.value
    if est.values:
        xs = [100 * x for x in est.values]
        ax.plot([min(xs), max(xs)], [y, y], color=colour, lw=1.5, zorder=2)
        ax.plot(xs, [y] * len(xs), "o", mfc="white", mec=colour, markersize=5, zorder=3)
    elif est.ci is not None:
        err = [[max(v - 100 * est.ci.low, 0)], [max(100 * est.ci.high - v, 0)]]
        ax.errorbar([v], [y], xerr=err, fmt="none", ecolor=colour, elinewidth=2, capsize=3, zorder=2)
    ax.plot([v], [y], "o", color=colour, markersize=7, zorder=4)


def plot_metrics(rows: Mapping[str, Mapping[str, Estimate]], labels: Mapping[str, str]) -> Figure:
    """Each headline rate for each model: points with 95% bars, the retrained models as their spread.

    Args:
        rows: axis label -> model name -> estimate (rates in [0, 1]), top row first.
        labels: model name -> legend label.

    Returns:
        The figure.
    """
    models = list(dict.fromkeys(m for per_model in rows.values() for m in per_model))
    fig, axes = new_figure(10, 0.55 * len(rows) + 1.2)
    ax = axes[0, 0]
    offsets = {"original": -0.22, "unlearned": 0.0, "retrain": 0.22}
    for row, per_model in enumerate(rows.values()):
        for m, est in per_model.items():
            _draw_estimate(ax, est, row + offsets[m], MODEL_COLOURS[m])
    ax.set_yticks(range(len(rows)), list(rows))
    ax.invert_yaxis()
    ax.set_xlim(-2, 102)
    ax.set_xlabel("percent (bars: 95% range; hollow circles: each retrained model, filled: their average)")
    style_axis(ax)
    for m in models:
        ax.plot([], [], "o", color=MODEL_COLOURS[m], label=labels[m])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False, fontsize=9)
    return fig


def _draw_checks(ax: Axes, bars: Sequence[CheckBar], xlabel: str) -> None:
    """One axis of the checks figure: per check the noise band (grey), the tolerance (green), the retrains
    (ticks) and the updated model's difference (diamond)."""
    extent = [1.0 if bars[0].scale == 1 else 5.0]
    for b in bars:
        extent += [b.scale * abs(x) for x in (b.tolerance, b.noise_margin or 0, b.difference or 0, *b.retrains)]
    span = max(extent) * 1.12
    for row, b in enumerate(bars):
        s = b.scale
        if b.noise_margin is not None:
            m = s * b.noise_margin
            ax.barh(row, 2 * m, left=-m, height=0.72, color=INK["noise"], edgecolor=INK["noise_edge"], zorder=1)
        low = -s * b.tolerance if b.two_sided else -span
        green = {"color": INK["allowed"], "edgecolor": INK["allowed_edge"]}
        ax.barh(row, s * b.tolerance - low, left=low, height=0.36, zorder=2, **green)
        if b.retrains:
            ticks = [s * x for x in b.retrains]
            ax.plot(ticks, [row] * len(ticks), "|", color=INK["retrain_tick"], markersize=15, mew=2, zorder=3)
        if b.difference is None:
            ax.text(0, row, "could not be measured", ha="center", va="center", fontsize=9, color=b.colour, zorder=4)
        else:
            ax.plot([s * b.difference], [row], "D", color=b.colour, mec="white", markersize=9, zorder=4)
    ax.axvline(0, color=INK["axis"], lw=1, zorder=2)
    ax.set_yticks(range(len(bars)), [b.label for b in bars], fontsize=9)
    ax.set_ylim(len(bars) - 0.5, -0.5)
    ax.set_xlim(-span, span)
    ax.set_xlabel(xlabel)
    style_axis(ax)


def plot_checks(rates: Sequence[CheckBar], zscores: Sequence[CheckBar]) -> Figure:
    """Each verdict check's difference to the retrained models against its tolerance and their noise margin.

    Args:
        rates: the checks measured in rates (drawn in percentage points), top first.
        zscores: the checks measured in z-scores (drawn on their own axis, in SD).

    Returns:
        The figure: one axis per unit that has checks, a legend below.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    groups = [
        (bars, label)
        for bars, label in (
            (rates, "difference to the retrained models' average, percentage points"),
            (zscores, "difference to the retrained models' average, in SD (z-score units)"),
        )
        if bars
    ]
    heights = [len(bars) + 1.1 for bars, _ in groups]
    fig, axes = new_figure(10, 0.62 * sum(heights) + 0.8, nrows=len(groups), height_ratios=heights)
    for ax, (bars, label) in zip(axes[:, 0], groups, strict=True):
        _draw_checks(ax, bars, label)
    handles = [
        Patch(facecolor=INK["allowed"], edgecolor=INK["allowed_edge"], label="agreed tolerance"),
        Patch(facecolor=INK["noise"], edgecolor=INK["noise_edge"], label="where a retrained model lands by chance"),
        Line2D([], [], ls="", marker="|", color=INK["retrain_tick"], ms=12, mew=2, label="each retrained model"),
        Line2D([], [], ls="", marker="D", color=INK["label"], label="updated model"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False, fontsize=9)
    return fig


def plot_confusion(classes: Sequence[str], panels: Sequence[ConfusionPanel]) -> Figure:
    """Confusion matrices on new patients (test), counts in the cells (averages for the retrained models).

    Args:
        classes: class names, in label order.
        panels: one per model.

    Returns:
        The figure, one panel per model.
    """
    fig, axes = new_figure(3.4 * len(panels), 3.3, ncols=len(panels))
    short = [c if len(c) <= 12 else c[:11] + "…" for c in classes]
    many = len(short) > 2
    for ax, p in zip(axes[0], panels, strict=True):
        cm = p.matrix
        if not cm:
            ax.set_axis_off()
            continue
        vmax = max(max(r) for r in cm) or 1
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=vmax)
        for i, row in enumerate(cm):
            for j, n in enumerate(row):
                text = str(int(n)) if float(n).is_integer() else f"{n:.1f}"
                ax.text(j, i, text, ha="center", va="center", color="white" if n > 0.6 * vmax else INK["text"])
        ax.set_xticks(range(len(short)), short, rotation=30 if many else 0, ha="right" if many else "center")
        ax.set_yticks(range(len(short)), short)
        ax.set_xlabel("model's answer")
        ax.set_ylabel("true diagnosis")
        ax.set_title(p.title, fontsize=10, color=TITLE_COLOURS[p.model])
    return fig


def plot_membership(panels: Sequence[MembershipPanel]) -> Figure:
    """Membership-attack scores of erased images against never-seen test images, per model.

    Args:
        panels: one per model (the retrained models' scores pooled).

    Returns:
        The figure, one panel per model.
    """
    fig, axes = new_figure(3.4 * len(panels), 2.8, ncols=len(panels))
    bins = [i / 20 for i in range(21)]
    for ax, p in zip(axes[0], panels, strict=True):
        if p.test_scores:
            ax.hist(p.test_scores, bins=bins, density=True, color=INK["reference"], label="never-seen patients")
        if p.forget_scores:
            erased = {"histtype": "step", "lw": 2, "color": MODEL_COLOURS["unlearned"], "label": "erased images"}
            ax.hist(p.forget_scores, bins=bins, density=True, **erased)
        ax.axvline(0.5, color=INK["guide"], ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_yticks([])
        ax.set_xlabel("attacker's 'was in training' score")
        ax.set_title(p.title, fontsize=10, color=TITLE_COLOURS[p.model])
        ax.spines[["top", "right", "left"]].set_visible(False)
    axes[0, 0].legend(fontsize=8, frameon=False, loc="upper left")
    return fig


def plot_slices(
    names: Sequence[str],
    per_model: Mapping[str, Sequence[SliceMetrics | None]],
    labels: Mapping[str, str],
    title: str,
) -> Figure:
    """Grouped bars of accuracy and missed disease for each slice (difficulty third or patient group).

    Args:
        names: slice names, for the x axis.
        per_model: model name -> one entry per slice (None where the model has no value).
        labels: model name -> legend label.
        title: what the slices are, for the panel titles.

    Returns:
        The figure: accuracy left, missed disease right.
    """
    fig, axes = new_figure(10, 3.3, ncols=2)
    width = 0.8 / max(len(per_model), 1)
    for ax, (stat, label) in zip(axes[0], (("accuracy", "accuracy"), ("fnr", "missed disease")), strict=True):
        for k, (m, slices) in enumerate(per_model.items()):
            points = [(i, getattr(s, stat)) for i, s in enumerate(slices) if s is not None]
            xs = [i - 0.4 + width * (k + 0.5) for i, v in points if v is not None]
            ys = [100 * v for _, v in points if v is not None]
            bars = ax.bar(xs, ys, width=width * 0.95, color=MODEL_COLOURS[m], label=labels[m], zorder=2)
            # Values on the bars: a 0% bar is otherwise invisible and looks like missing data.
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1, color=INK["label"])
        ax.set_xticks(range(len(names)), names)
        ax.set_ylim(0, 112)
        ax.set_ylabel(f"{label} (%)")
        ax.set_title(f"{title}: {label}", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color=INK["grid"], zorder=0)
    handles, legend = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, legend, loc="outside lower center", ncol=len(per_model), frameon=False, fontsize=9)
    return fig


def plot_evidence(z: Sequence[float], beyond: float) -> Figure:
    """Histogram of the erased images' z-scores against the retrained models, with the ±``beyond`` guides.

    Args:
        z: one z-score per erased image.
        beyond: where a z-score counts as unusual for a retrained model (2).

    Returns:
        The figure.
    """
    fig, axes = new_figure(9, 2.8)
    ax = axes[0, 0]
    edge = max([beyond + 2.0, *(abs(x) + 0.5 for x in z)])
    ax.axvspan(-edge, -beyond, color=INK["grid"], zorder=0)
    ax.axvspan(beyond, edge, color=INK["grid"], zorder=0)
    ax.hist(list(z), bins=30, range=(-edge, edge), color=MODEL_COLOURS["unlearned"], alpha=0.85, zorder=2)
    for x in (-beyond, beyond):
        ax.axvline(x, color=INK["guide"], ls="--", lw=1, zorder=3)
    ax.axvline(0, color=INK["axis"], lw=1, zorder=3)
    ax.set_xlim(-edge, edge)
    ax.set_xlabel("z-score of each erased image (0: as sure as a retrained model; right: more sure, left: less sure)")
    ax.set_ylabel("images")
    ax.text(-edge, 0.98, " erased so hard it stands out", transform=ax.get_xaxis_transform(), va="top", fontsize=8)
    ax.text(edge, 0.98, "still remembered ", transform=ax.get_xaxis_transform(), va="top", ha="right", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_member_scores(scores: Sequence[float]) -> Figure:
    """The audit's histogram of membership scores of the requested images.

    Args:
        scores: the attack's membership probability of each requested image.

    Returns:
        The figure.
    """
    fig, axes = new_figure(7.5, 2.6)
    ax = axes[0, 0]
    ax.hist(
        list(scores),
        bins=20,
        range=(0, 1),
        color=MODEL_COLOURS["unlearned"],
        alpha=0.8,
        label="requested (erased) images",
    )
    ax.axvline(0.5, color=INK["guide"], linestyle="--", linewidth=1)
    ax.set_xlabel("attacker's membership score (right of the dashed line: judged 'used in training')")
    ax.set_ylabel("images")
    ax.legend(frameon=False)
    style_axis(ax)
    return fig


__all__ = [
    "CheckBar",
    "ConfusionPanel",
    "Estimate",
    "MembershipPanel",
    "Panel",
    "data_uri",
    "new_figure",
    "plot_checks",
    "plot_confusion",
    "plot_evidence",
    "plot_member_scores",
    "plot_membership",
    "plot_metrics",
    "plot_slices",
    "style_axis",
]
