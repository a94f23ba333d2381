"""Colours and labels of the HTML pages and their figures, defined once for both pages.

Statuses map to a :class:`Tone` (text colour, box background, CSS class) through plain dicts, so a
new status is one entry here: the stylesheet rules for every tone are generated from :data:`TONES`
(see ``templates/base.html``), and the figures use the same colours.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_COLOURS = {"original": "#9e9e9e", "unlearned": "#1565c0", "retrain": "#e67e22"}
TITLE_COLOURS = {**MODEL_COLOURS, "original": "#616161"}  # grey text needs more contrast than grey bars
MODEL_LABELS = {
    "original": "Original model",
    "unlearned": "Updated model (after erasure)",
    "retrain": "Retrained without the patients",
}
"""Column headers and legends; the retrained models' label gets their number (see :func:`model_label`)."""
MODEL_SHORT = {"original": "Original model", "unlearned": "Updated model", "retrain": "Retrained without the patients"}
"""Figure panel titles and narrow table headers."""

INK = {
    "text": "#212121",
    "label": "#424242",
    "guide": "#616161",  # dashed decision lines
    "axis": "#757575",  # the zero line
    "grid": "#eeeeee",
    "reference": "#bdbdbd",  # never-seen patients in the membership histograms
    "allowed": "#c8e6c9",  # the tolerance a check allows
    "allowed_edge": "#81c784",
    "noise": "#e0e0e0",  # where a retrained model lands by chance (the noise margin)
    "noise_edge": "#bdbdbd",
    "retrain_tick": "#e67e22",  # one retrained model on the checks figure
}


@dataclass(frozen=True)
class Tone:
    """How a status looks: ``css`` is the class of text in this tone, ``bg`` the background of its box."""

    css: str
    fg: str
    bg: str
    bold: bool = True


PASS = Tone("pass", "#1b5e20", "#e8f5e9")
FAIL = Tone("fail", "#b71c1c", "#ffebee")
UNSURE = Tone("unsure", "#8d6e00", "#fff8e1")
NEUTRAL = Tone("neutral", "#424242", "#f5f5f5")
MUTED = Tone("muted", "#757575", "#f5f5f5", bold=False)
TONES = (PASS, FAIL, UNSURE, NEUTRAL, MUTED)


@dataclass(frozen=True)
class Badge:
    """A status as a reader sees it in a table cell: a word in a tone."""

    tone: Tone
    text: str


VERDICT_TONES: dict[str, Tone] = {
    # the unlearning verdict (verify.verdict.Verdict.status) and the audit verdict (audit.report.AuditVerdict)
    "pass": PASS,
    "fail": FAIL,
    "unverified": UNSURE,
    "inconclusive": UNSURE,
}
CHECK_RESULTS: dict[str, Badge] = {
    # a verdict check, by its status (verify.verdict.Check.status)
    "pass": Badge(PASS, "✓ pass"),
    "fail": Badge(FAIL, "✗ fail"),
    "inconclusive": Badge(UNSURE, "? inconclusive"),
    "unknown": Badge(UNSURE, "– unknown"),
}
AUDIT_CHECKS: dict[str, Badge] = {
    # an audit check (audit.report.AuditCheck.status)
    "pass": Badge(PASS, "passed"),
    "fail": Badge(FAIL, "FAILED"),
    "inconclusive": Badge(UNSURE, "inconclusive"),
    "skipped": Badge(MUTED, "not asked for"),
}

LINK_TONES: dict[str, Tone] = {"ok": PASS, "broken": FAIL}  # a link of the audit's ledger lineage


def check_result(status: str) -> Badge:
    """The badge of a check status; an unknown status is shown neutral, in its own word.

    Args:
        status: a check status such as ``pass``, ``fail``, ``inconclusive`` or ``unknown``.

    Returns:
        Its badge.
    """
    return CHECK_RESULTS.get(status, Badge(NEUTRAL, status))


def model_label(model: str, n_retrains: int) -> str:
    """A model's column header; the retrained models' says how many there are.

    Args:
        model: ``original``, ``unlearned`` or ``retrain``.
        n_retrains: how many models were retrained without the patients.

    Returns:
        The label, e.g. "Retrained without the patients (3 models)".
    """
    if model != "retrain":
        return MODEL_LABELS[model]
    return f"{MODEL_LABELS[model]} ({n_retrains} model{'' if n_retrains == 1 else 's'})"


def verdict_tone(status: str) -> Tone:
    """The tone of a verdict status; an unknown status is shown neutral rather than failing the page.

    Args:
        status: a verdict status such as ``pass``, ``fail``, ``unverified`` or ``inconclusive``.

    Returns:
        Its tone.
    """
    return VERDICT_TONES.get(status, NEUTRAL)


__all__ = [
    "AUDIT_CHECKS",
    "CHECK_RESULTS",
    "FAIL",
    "INK",
    "LINK_TONES",
    "MODEL_COLOURS",
    "MODEL_LABELS",
    "MODEL_SHORT",
    "MUTED",
    "NEUTRAL",
    "PASS",
    "TITLE_COLOURS",
    "TONES",
    "UNSURE",
    "VERDICT_TONES",
    "Badge",
    "Tone",
    "check_result",
    "model_label",
    "verdict_tone",
]
