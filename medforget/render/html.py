"""The unlearning report and the audit as self-contained HTML pages for readers who are not ML engineers.

A data-protection officer must be able to answer "was this patient's data erased, and is the
model still safe?" without reading JSON. The unlearning page therefore leads with the verdict in
one plain, colour-coded sentence, explains what was done in words, shows every number next to the
models retrained from scratch without the patients (the gold standard: models that never saw them;
there are K of them, because two such retrains already differ from each other), and ends with the
provenance needed for an audit.

The pages are Jinja2 templates (``templates/``: one shell, one stylesheet, one template per page)
with autoescaping, so every piece of text from a report is escaped; this module builds what they
say in words, :mod:`.checks` the verdict's checks, :mod:`.pages` and :mod:`.slices` the tables, :mod:`.audit_page` the
audit's views and :mod:`.figures` the plots. A page has no external resources (inline CSS, plots as
base64 PNG), so it can be archived, e-mailed or opened offline years later and look the same.
Writing the page is the caller's job (:func:`medforget.fileio.commit`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, StrictUndefined

from medforget.evaluation import Interval
from medforget.render.audit_page import audit_view
from medforget.render.checks import check_rows, check_text, checks_figure, failures, settle_items
from medforget.render.format import DASH, cost, num, pct, points, pts
from medforget.render.pages import (
    Fact,
    confusion_figure,
    evidence_view,
    membership_figure,
    metric_rows,
    metrics_figure,
    models_of,
    provenance_facts,
    threshold_rows,
)
from medforget.render.palette import AUDIT_CHECKS, LINK_TONES, TONES, check_result, verdict_tone
from medforget.render.slices import attribute_view, difficulty_table
from medforget.verify.analysis import GROUP_GAP_MIN_N
from medforget.verify.report import Cost, UnlearnReport
from medforget.verify.verdict import Check

if TYPE_CHECKING:
    from medforget.audit.report import AuditReport
    from medforget.methods import Stopping

LEDGER_PLACEHOLDER = "\x00medforget-ledger-entry\x00"
"""Stands for the ledger position until the entry is appended (see :func:`medforget.unlearn.write_outputs`)."""

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


# --------------------------------------------------------------------------- numbers format.py lacks
# z-scores (in SD of the retrained models), p-values and likelihood ratios. They belong in
# medforget.render.format next to pct/pts; they are here until that module gains them.


def sd(x: float | None, digits: int = 2) -> str:
    """A signed z-score or a difference of z-scores, in the retrained models' SD: 0.483 -> '+0.48 SD'."""
    return DASH if x is None else f"{x:+.{digits}f} SD"


def sd_size(x: float | None, digits: int = 2) -> str:
    """A non-negative size in SD (a tolerance, a noise margin): 0.5 -> '0.50 SD'."""
    return DASH if x is None else f"{x:.{digits}f} SD"


def sig(x: float | None) -> str:
    """Three significant digits, for p-values, likelihood ratios and AUCs: 0.000123 -> '0.000123'."""
    return DASH if x is None else f"{x:.3g}"


# --------------------------------------------------------------------------- sentences


def _titles(checks: Sequence[Check], *statuses: str) -> list[str]:
    return [check_text(c).title.lower() for c in checks if c.status in statuses]


def _inconclusive(checks: Sequence[Check]) -> str:
    """Why nothing failed yet nothing passed, in the words of :func:`plain_verdict`."""
    spread = [check_text(c).title.lower() for c in checks if c.status == "inconclusive" and c.noise_margin is not None]
    single = [check_text(c).title.lower() for c in checks if c.status == "inconclusive" and c.noise_margin is None]
    unknown = _titles(checks, "unknown")
    parts = []
    if spread:
        parts.append(
            "models retrained from scratch without these patients differ from each other by more than the agreed "
            f"tolerance ({', '.join(spread)}), so the data cannot show that the updated model is within it"
        )
    if single:
        parts.append(f"a single retrained model cannot show how much retraining itself varies ({', '.join(single)})")
    if unknown:
        parts.append(f"{', '.join(unknown)} could not be measured (for example, no disease cases to count misses on)")
    reasons = "; and ".join(parts) or "some checks could not be decided"
    return f"Erasure inconclusive: nothing failed, but {reasons}."


def plain_verdict(report: UnlearnReport) -> str:
    """The verdict as one sentence without jargon.

    Args:
        report: the unlearning report.

    Returns:
        The sentence that heads the page.
    """
    v = report.verdict
    if v.status == "pass":
        return (
            "Erasure confirmed: the updated model behaves like models retrained from scratch without these "
            "patients. It keeps no measurable trace of their images, and it is as accurate and as safe for new "
            "patients, within every agreed tolerance."
        )
    if v.status == "fail":
        return (
            f"Erasure NOT confirmed: on {', '.join(_titles(v.checks, 'fail'))}, the updated model differs from "
            "models retrained from scratch without these patients by more than the agreed tolerance, and by more "
            "than those retrained models differ from each other."
        )
    if v.status == "inconclusive":
        return _inconclusive(v.checks)
    return (
        "Erasure not verified: the updated model was not compared with models retrained without these patients, "
        "so there is no evidence that their data were forgotten."
    )


def check_tally(report: UnlearnReport) -> str:
    """How many checks came out which way: "Of 6 checks: 1 failed, 5 inconclusive." ("" without checks)."""
    checks = report.verdict.checks
    if not checks:
        return ""
    counts = {s: sum(c.status == s for c in checks) for s in ("pass", "fail", "inconclusive", "unknown")}
    words = {"pass": "passed", "fail": "failed", "inconclusive": "inconclusive", "unknown": "could not be measured"}
    parts = [f"{n} {words[s]}" for s, n in counts.items() if n]
    return f"Of {len(checks)} checks: {', '.join(parts)}."


def verdict_details(report: UnlearnReport) -> list[tuple[str, str]]:
    """The lines under the headline, as ``(css class, text)``: each failure's direction, the tally, the
    technical verdict.

    Args:
        report: the unlearning report.

    Returns:
        The lines, in order (empty texts are skipped by the template).
    """
    lines = [("technical", line) for line in failures(report.verdict.checks)]
    return [*lines, ("technical", check_tally(report)), ("technical", f"Technical verdict: {report.verdict.summary}")]


def quoted(label: str) -> str:
    """A class name in quotes: MedMNIST names such as 'normal, benign' contain commas."""
    return f"“{label}”"


def time_sentence(cost: Cost) -> str:
    """How long the erasure took, against one retraining and any one-off tuning (starts with a space)."""
    if cost.retrain_seconds and cost.speedup:
        text = (
            f" The erasure took {cost.method_seconds:.0f} s; retraining one model from scratch took "
            f"{cost.retrain_seconds:.0f} s on average"
        )
        text += (
            f" ({cost.speedup:.1f} times as long)."
            if cost.speedup >= 1
            else ", so for this request the erasure was not faster than retraining."
        )
    else:
        text = f" The erasure took {cost.method_seconds:.0f} s."
    if cost.tuning_seconds is not None:
        text += f" Its settings were tuned once beforehand, which took {cost.tuning_seconds:.0f} s" + (
            f" and is repaid after {cost.tuning_break_even_requests:.1f} requests."
            if cost.tuning_break_even_requests is not None
            else "."
        )
    return text


def stopping_sentence(s: Stopping | None) -> str:
    """When the method stopped, and why, in plain words (starts with a space; empty for a method without steps)."""
    if s is None:
        return ""
    if s.rule == "none":
        return f" It trained for a fixed {s.steps} steps, with no rule to stop earlier."
    looked = (
        "the erased images looked, to the model, like images it had never seen"
        + (" (as much as they look to models retrained without them)" if s.target_from == "calibration" else "")
        if s.rule == "auc"
        else "its accuracy on the erased images fell to its accuracy on images it had never seen"
    )
    if s.outcome == "forgotten":
        return (
            f" It stopped after {s.steps} of at most {s.max_steps} training steps, once {looked}"
            " (on a sample of them, at two checks in a row)."
        )
    return (
        f" It used all {s.max_steps} training steps its settings allow without two checks in a row finding that"
        f" {looked}; the checks below say how far it got."
    )


@dataclass(frozen=True)
class WhatWasDone:
    method_text: str
    speed: str
    seeds: str  # the retrained models' seeds, "1, 2, 3" ("" if not recorded)
    facts: list[Fact]


def what_was_done(report: UnlearnReport) -> WhatWasDone:
    """The method in words, its cost in time and the request's key facts.

    Args:
        report: the unlearning report.

    Returns:
        What the "What was done" section says beyond its fixed text.
    """
    r, req = report, report.request
    counts = "; ".join(f"{c.n} {quoted(c.label)}" for c in req.counts) or DASH
    received = f", received {req.received_at:%Y-%m-%d}" if req.received_at else ""
    classes = ", ".join(quoted(c) for c in r.classes)
    facts = [
        Fact("Request", f"{req.request_id or '(no id)'}{received}"),
        Fact("Erased", f"{req.n_samples} images of {req.n_patients} patients ({counts})"),
        Fact("Method", r.method),
        Fact("Model's task", f"{len(r.classes)} classes: {classes}; disease: {' or '.join(map(quoted, r.positive))}"),
        Fact("Compared with", r.cost.baseline_source),
    ]
    method_text = METHOD_PLAIN.get(r.method, f"applied the unlearning method {r.method}")
    seeds = ", ".join(str(s) for s in r.retrain_seeds)
    return WhatWasDone(method_text, stopping_sentence(r.stopping) + time_sentence(r.cost), seeds, facts)


# --------------------------------------------------------------------------- pages


def interval(ci: Interval | None, signed: bool = False) -> str:
    """A 95% interval for a table cell: '10.2–14.8%' for a rate, '-1.0 to +2.3 pts' for a difference."""
    if ci is None:
        return DASH
    if signed:
        return f"{pts(ci.low).removesuffix(' pts')} to {pts(ci.high)}"
    return f"{num(ci.low)}–{pct(ci.high)}"


@functools.cache
def environment() -> Environment:
    """The Jinja2 environment of both pages: package templates, autoescaping, the shared number filters.

    Returns:
        The environment (built once).
    """
    env = Environment(
        loader=PackageLoader("medforget.render", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        pct=pct, pts=pts, points=points, num=num, cost=cost, interval=interval, sd=sd, sd_size=sd_size, sig=sig
    )
    env.globals.update(
        tones=TONES,
        audit_checks=AUDIT_CHECKS,
        link_tones=LINK_TONES,
        verdict_tone=verdict_tone,
        check_result=check_result,
    )
    return env


def render_unlearn_html(report: UnlearnReport, ledger_entry: int | str | None = None) -> str:
    """The unlearning report as one self-contained HTML document (no external resources).

    Args:
        report: the unlearning report.
        ledger_entry: its position in the deletion ledger, or :data:`LEDGER_PLACEHOLDER` to fill in later
            (it passes through rendering unchanged), or None if it is not recorded in a ledger.

    Returns:
        The page.
    """
    models = models_of(report)
    metrics = metric_rows(report)
    thresholds, operating_point = threshold_rows(report)
    analysis = report.analysis
    return (
        environment()
        .get_template("unlearn.html")
        .render(
            report=report,
            models=models,
            has_reference=bool(models.k),
            tone=verdict_tone(report.verdict.status),
            plain_verdict=plain_verdict(report),
            verdict_details=verdict_details(report),
            settle=settle_items(report.verdict.checks),
            done=what_was_done(report),
            checks=check_rows(report),
            metrics=metrics,
            thresholds=thresholds,
            operating_point=operating_point,
            evidence=evidence_view(report),
            difficulty=difficulty_table(report, models),
            groups=[attribute_view(a, models) for a in analysis.attributes] if analysis else [],
            group_gap_min_n=GROUP_GAP_MIN_N,
            provenance=provenance_facts(report, ledger_entry),
            figures={
                "checks": checks_figure(report.verdict.checks),
                "metrics": metrics_figure(metrics, models),
                "confusion": confusion_figure(report, models),
                "membership": membership_figure(report, models),
            },
            generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
    )


def render_audit_html(report: AuditReport) -> str:
    """The audit as one self-contained HTML page for a data-protection officer.

    Args:
        report: the audit report.

    Returns:
        The page.
    """
    return environment().get_template("audit.html").render(report=report, view=audit_view(report))


__all__ = [
    "LEDGER_PLACEHOLDER",
    "METHOD_PLAIN",
    "WhatWasDone",
    "check_tally",
    "environment",
    "interval",
    "plain_verdict",
    "render_audit_html",
    "render_unlearn_html",
    "sd",
    "sd_size",
    "sig",
    "time_sentence",
    "verdict_details",
    "what_was_done",
]
