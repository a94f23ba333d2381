"""The unlearning page's slice tables: the erased images by difficulty third, and results by patient group.

Each slice shows accuracy and missed disease for every model; the retrained models enter as their
per-sample average (the share of them that got each image right), as :mod:`medforget.verify.analysis`
computes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from medforget.evaluation import SliceMetrics
from medforget.render.figures import data_uri, plot_slices
from medforget.render.pages import Models
from medforget.verify.analysis import AttributeAnalysis, DifficultySlice, GroupGap, GroupSlice
from medforget.verify.report import UnlearnReport


@dataclass(frozen=True)
class SliceRow:
    name: str
    n: int
    n_positive: int
    cells: list[SliceMetrics | None]  # one per model, in the table's model order


@dataclass(frozen=True)
class SliceTable:
    """Accuracy and missed disease per slice (difficulty third or patient group), with its figure."""

    first_header: str
    headers: list[str]  # one per model
    rows: list[SliceRow]
    figure: str


@dataclass(frozen=True)
class AttributeView:
    attribute: str
    set_label: str
    table: SliceTable
    gaps: dict[str, GroupGap]  # model label -> best - worst group


def _slice_table(
    first_header: str,
    names: Sequence[tuple[str, str]],
    slices: Sequence[DifficultySlice] | Sequence[GroupSlice],
    models: Models,
    plot_title: str,
) -> SliceTable:
    """``names``: (table row name, figure tick label) per slice."""
    rows = [
        SliceRow(name, s.n, s.n_positive, [getattr(s, m) for m in models.names])
        for (name, _), s in zip(names, slices, strict=True)
    ]
    per_model = {m: [getattr(s, m) for s in slices] for m in models.names}
    figure = plot_slices([tick for _, tick in names], per_model, models.short, plot_title)
    return SliceTable(first_header, [models.short[m] for m in models.names], rows, data_uri(figure))


def difficulty_table(report: UnlearnReport, models: Models) -> SliceTable | None:
    """The erased images by difficulty third, or None if the report has no difficulty analysis.

    Args:
        report: the unlearning report.
        models: the page's models.

    Returns:
        The table with its figure.
    """
    diff = report.analysis.difficulty if report.analysis is not None else None
    if diff is None:
        return None
    names = [
        (f"{s.name} (loss {s.loss_min:.2f}–{s.loss_max:.2f})" if s.loss_min is not None else s.name, s.name)
        for s in diff.slices
    ]
    return _slice_table("third", names, diff.slices, models, "Erased images")


def attribute_view(a: AttributeAnalysis, models: Models) -> AttributeView:
    """One manifest attribute on one set: per-group table, gaps between groups and figure.

    Args:
        a: the attribute's analysis.
        models: the page's models.

    Returns:
        What the page shows for it.
    """
    set_label = "erased images" if a.set == "forget" else "new patients (test)"
    names = [(g.group, g.group) for g in a.groups]
    table = _slice_table(a.attribute, names, a.groups, models, f"{a.attribute}, {set_label}")
    gaps = {"original": a.gap_original, "unlearned": a.gap_unlearned, "retrain": a.gap_retrain}
    return AttributeView(
        a.attribute, set_label, table, {models.short[m]: g for m in models.names if (g := gaps[m]) is not None}
    )


__all__ = ["AttributeView", "SliceRow", "SliceTable", "attribute_view", "difficulty_table"]
