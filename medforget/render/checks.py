"""The verdict's checks as a non-specialist reads them: plain titles, what each means, rows and figure.

Each check (:mod:`medforget.verify.checks`) compares the updated model with the K retrained models:
its difference to their average, against the agreed tolerance and against the noise margin (where a
fresh retrain could land by chance). This module turns each into words and table rows; the template
formats the numbers and :func:`.figures.plot_checks` draws them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from medforget.render.figures import CheckBar, data_uri, plot_checks
from medforget.render.format import pct
from medforget.render.palette import Badge, check_result
from medforget.verify.report import UnlearnReport
from medforget.verify.verdict import Check


@dataclass(frozen=True)
class CheckText:
    """How a verdict check reads for a non-specialist; ``above``/``below``: what a positive/negative difference
    means. ``meaning`` may name ``{sensitivity}``, the operating point's target sensitivity."""

    title: str
    meaning: str
    measured: str
    above: str
    below: str


CHECK_TEXT: dict[str, CheckText] = {
    "forget accuracy": CheckText(
        "Forgetting",
        "On the erased images the updated model is right about as often, compared with unseen images of the "
        "same kinds, as models that never saw them. Each model's decision threshold is first re-set on the "
        "validation images, so a mere shift of the threshold does not count as forgetting, and a model that is "
        "better or worse on a whole class does not fake it.",
        "accuracy on the erased images minus on unseen ones, updated − retrained",
        "right more often than the retrained models: it still recognises them",
        "right less often than the retrained models: erased so hard they stand out",
    ),
    "forget evidence": CheckText(
        "Forgetting per image",
        "Image by image, the updated model is as sure of the erased images as the retrained models are: no more "
        "(still remembered) and no less (erased so hard they stand out), measured against how it treats unseen "
        "images of the same kinds.",
        "z-score of the erased images minus that of unseen images",
        "more sure of the erased images than the retrained models: a trace remains",
        "less sure of the erased images than the retrained models: they stand out",
    ),
    "membership inference": CheckText(
        "Privacy",
        "An attacker probing the model judges the erased images 'not used in training' as often as it does "
        "with the retrained models.",
        "share judged 'not used', updated − retrained",
        "more erased images look unused than with the retrained models: they stand out",
        "fewer erased images look unused than with the retrained models: they still look used",
    ),
    "test accuracy": CheckText(
        "Quality",
        "Accuracy on new patients is not noticeably lower than the retrained models'.",
        "accuracy drop on new patients, retrained − updated",
        "less accurate than the retrained models",
        "at least as accurate as the retrained models",
    ),
    "test AUROC": CheckText(
        "Ranking of disease",
        "On new patients the model ranks disease cases above healthy ones as well as the retrained models do "
        "(AUROC, whatever the decision threshold).",
        "AUROC drop on new patients, retrained − updated",
        "ranks disease less well than the retrained models",
        "ranks disease at least as well as the retrained models",
    ),
    "missed disease (test FNR)": CheckText(
        "Patient safety",
        "The share of disease cases missed on new patients is not noticeably higher than with the retrained "
        "models. Every model is compared at the same operating point: its threshold set to find {sensitivity} of "
        "the disease cases in the validation images, as the original model does, so a shifted threshold can "
        "neither hide nor fake missed disease.",
        "extra missed disease on new patients at the operating point, updated − retrained",
        "misses more disease than the retrained models",
        "misses no more disease than the retrained models",
    ),
}


def check_text(c: Check) -> CheckText:
    """The plain-language title and meaning of a check (its own words if it is not known here)."""
    own = CheckText(c.name, c.description, c.metric, "above the retrained models' average", "below it")
    return CHECK_TEXT.get(c.name, own)


@dataclass(frozen=True)
class CheckRow:
    """One row of the checks table (numbers unformatted: the template formats them by ``unit``)."""

    title: str
    meaning: str
    measured: str
    unit: str  # "rate" (shown in points) or "z" (shown in SD)
    two_sided: bool
    difference: float | None
    direction: str  # what the sign of the difference means, in words ("" if there is none)
    tolerance: float
    noise_margin: float | None
    unlearned: float | None
    retrain_mean: float | None
    retrain_values: list[float]
    result: Badge
    reason: str
    settle: str | None


def _direction(c: Check, text: CheckText) -> str:
    if c.difference is None or c.difference == 0:
        return "" if c.difference is None else "exactly the retrained models' average"
    return text.above if c.difference > 0 else text.below


def check_rows(report: UnlearnReport) -> list[CheckRow]:
    """The verdict's checks as the page shows them, in the verdict's order.

    Args:
        report: the unlearning report.

    Returns:
        One row per check.
    """
    op = report.original.operating_point or report.unlearned.operating_point
    sensitivity = pct(op.target_sensitivity, 0) if op is not None else "the same share"
    rows = []
    for c in report.verdict.checks:
        text = check_text(c)
        rows.append(
            CheckRow(
                title=text.title,
                meaning=text.meaning.replace("{sensitivity}", sensitivity),
                measured=text.measured,
                unit=c.unit,
                two_sided=c.direction == "two-sided",
                difference=c.difference,
                direction=_direction(c, text),
                tolerance=c.tolerance,
                noise_margin=c.noise_margin,
                unlearned=c.unlearned,
                retrain_mean=c.retrain_mean,
                retrain_values=list(c.retrain_values),
                result=check_result(c.status),
                reason=c.reason,
                settle=c.settle,
            )
        )
    return rows


def _offsets(c: Check) -> tuple[float, ...]:
    """Each retrained model's value relative to their average, signed like the check's difference."""
    if c.retrain_mean is None:
        return ()
    sign = -1.0 if c.direction == "lower-is-worse" else 1.0
    return tuple(sign * (v - c.retrain_mean) for v in c.retrain_values)


def checks_figure(checks: Sequence[Check]) -> str | None:
    """The checks against their tolerance and noise margin (z-score checks on their own axis), as a data URI.

    Args:
        checks: the verdict's checks.

    Returns:
        The figure, or None without checks.
    """
    if not checks:
        return None
    bars = []
    for c in checks:
        text = check_text(c)
        bars.append(
            CheckBar(
                label=text.title + "\n" + textwrap.fill(f"({text.measured})", 48),
                difference=c.difference,
                tolerance=c.tolerance,
                noise_margin=c.noise_margin,
                two_sided=c.direction == "two-sided",
                retrains=_offsets(c),
                colour=check_result(c.status).tone.fg,
                scale=1.0 if c.unit == "z" else 100.0,
            )
        )
    rates = [b for b in bars if b.scale != 1.0]
    zscores = [b for b in bars if b.scale == 1.0]
    return data_uri(plot_checks(rates, zscores))


def failures(checks: Sequence[Check]) -> list[str]:
    """One line per failed check: its title and which way the updated model is off.

    Args:
        checks: the verdict's checks.

    Returns:
        E.g. "Privacy: fewer erased images look unused than with the retrained models: they still look used."
    """
    return [f"{check_text(c).title}: {_direction(c, check_text(c))}." for c in checks if c.status == "fail"]


def settle_items(checks: Sequence[Check]) -> list[tuple[str, str]]:
    """What would settle the undecided checks: ``(check titles, what would settle them)``, one per distinct remedy.

    Args:
        checks: the verdict's checks.

    Returns:
        The remedies, in the order the checks come.
    """
    by_remedy: dict[str, list[str]] = {}
    for c in checks:
        if c.status == "inconclusive" and c.settle:
            by_remedy.setdefault(c.settle, []).append(check_text(c).title.lower())
    return [(", ".join(titles), remedy) for remedy, titles in by_remedy.items()]


__all__ = [
    "CHECK_TEXT",
    "CheckRow",
    "CheckText",
    "check_rows",
    "check_text",
    "checks_figure",
    "failures",
    "settle_items",
]
