"""A study's results as tables: one tidy CSV row per run, mean ± sd per cell, the markdown summary."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medforget.fileio import atomic_path
from medforget.verify.metrics import METRICS, average_gap

if TYPE_CHECKING:
    from medforget.evaluation import ModelEval
    from medforget.study.runner import RunRecord, StudyResult


MODELS = ("unlearned", "retrain", "original")
EXTRA = ("test_auroc", "refit_forget_accuracy", "refit_test_accuracy", "test_fnr_op")
CHECKS = ("forget_accuracy", "forget_evidence", "membership_inference", "test_accuracy", "test_auroc", "missed_disease")


def _extra(ev: ModelEval) -> dict[str, float | None]:
    return {
        "test_auroc": ev.test_auroc,
        "refit_forget_accuracy": ev.refit.forget_accuracy if ev.refit else None,
        "refit_test_accuracy": ev.refit.test_accuracy if ev.refit else None,
        "test_fnr_op": ev.at_operating_point.fnr if ev.at_operating_point else None,
    }


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known and len(known) == len(values) else None


COLUMNS = [
    "dataset", "forget", "design", "fraction", "method", "label", "seed", "n_forget", "n_forget_positive",
    "verdict", "average_gap", "original_average_gap",
    *(f"{model}_{m.key}" for model in MODELS for m in METRICS),
    *(f"retrain_{m.key}_sd" for m in METRICS), "n_retrains",
    "test_accuracy_drop", "test_fnr_increase",
    *(f"{model}_{extra}" for model in MODELS for extra in EXTRA),
    "retrain_test_fnr_op_margin", "test_fnr_op_increase", "evidence_difference", "evidence_noise",
    *(f"check_{c}" for c in CHECKS),
    *(f"{m}_forget_{d}_accuracy" for m in ("unlearned", "retrain") for d in ("easy", "medium", "hard")),
    "steps", "max_steps", "stop_outcome", "method_seconds", "retrain_seconds", "time_fraction", "params",
]  # fmt: skip
"""One column per reported metric (:data:`medforget.verify.metrics.METRICS`) and model (the retrains' mean, and
their spread), the threshold-free and operating-point results, each verdict check's status, then the cost."""


def tidy_row(rec: RunRecord) -> dict[str, Any]:
    """One flat row of a run (every fraction in [0, 1], seconds as measured)."""
    r = rec.report
    row: dict[str, Any] = {
        "dataset": rec.dataset,
        "forget": rec.forget,
        "design": rec.design,
        "fraction": rec.fraction,
        "method": rec.method,
        "label": rec.label,
        "seed": rec.seed,
        "n_forget": r.request.n_samples,
        "n_forget_positive": r.unlearned.forget.n_positive,
        "verdict": r.verdict.status,
        "average_gap": r.average_gap,
        # from the rows, so reports written before the field was recorded have it too
        "original_average_gap": average_gap(r.metrics, of="original"),
        "params": json.dumps(r.params, sort_keys=True),
    }
    for metric in r.metrics:
        row[f"original_{metric.key}"] = metric.original
        row[f"unlearned_{metric.key}"] = metric.unlearned
        row[f"retrain_{metric.key}"] = metric.retrain_mean
        row[f"retrain_{metric.key}_sd"] = metric.retrain_sd
    for model, ev in (("original", r.original), ("unlearned", r.unlearned)):
        row.update({f"{model}_{k}": v for k, v in _extra(ev).items()})
    extras = [_extra(ev) for ev in r.retrains]
    row.update({f"retrain_{k}": _mean([e[k] for e in extras]) for k in EXTRA})
    row["n_retrains"] = len(r.retrains)
    row["test_accuracy_drop"] = sub(row["retrain_test_accuracy"], row["unlearned_test_accuracy"])
    row["test_fnr_increase"] = sub(row["unlearned_test_fnr"], row["retrain_test_fnr"])
    row["test_fnr_op_increase"] = sub(row["unlearned_test_fnr_op"], row["retrain_test_fnr_op"])
    safety = [c for c in r.verdict.checks if c.metric == "test FNR at the operating point"]
    if safety and safety[0].noise_margin is not None:  # the verdict's own noise margin of missed disease
        row["retrain_test_fnr_op_margin"] = safety[0].noise_margin
    if r.evidence is not None:
        row["evidence_difference"] = r.evidence.difference
        diffs = r.evidence.retrain_differences
        row["evidence_noise"] = statistics.stdev(diffs) if len(diffs) > 1 else None
    for check in r.verdict.checks:
        row[f"check_{check.name.split(' (')[0].replace(' ', '_').lower()}"] = check.status
    diff = r.analysis.difficulty if r.analysis is not None else None
    for sl in diff.slices if diff is not None else []:
        row[f"unlearned_forget_{sl.name}_accuracy"] = sl.unlearned.accuracy
        row[f"retrain_forget_{sl.name}_accuracy"] = sl.retrain.accuracy if sl.retrain is not None else None
    if r.stopping is not None:  # how far an iterative method went, and why it stopped
        row.update(steps=r.stopping.steps, max_steps=r.stopping.max_steps, stop_outcome=r.stopping.outcome)
    row["method_seconds"] = r.cost.method_seconds
    row["retrain_seconds"] = r.cost.retrain_seconds
    if r.cost.retrain_seconds:
        row["time_fraction"] = r.cost.method_seconds / r.cost.retrain_seconds
    return {c: row.get(c) for c in COLUMNS}


def sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    with atomic_path(path, force=True) as tmp:
        tmp.write_text(buf.getvalue())


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` with numbers as floats and empty cells as ``None``."""

    def cell(v: str) -> Any:
        if v == "":
            return None
        try:
            return float(v)
        except ValueError:
            return v

    with open(path, newline="") as fh:
        return [{k: cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


SUMMARY_METRICS = [  # (column, header, scale): percentages shown in points
    ("unlearned_retain_accuracy", "retain acc", 100),
    ("unlearned_forget_accuracy", "forget acc", 100),
    ("unlearned_test_accuracy", "test acc", 100),
    ("unlearned_test_fnr", "test FNR", 100),
    ("test_fnr_increase", "FNR − retrain", 100),
    ("test_fnr_op_increase", "FNR@op − retrain", 100),
    ("unlearned_mia", "MIA eff.", 100),
    ("average_gap", "avg gap", 100),
    ("time_fraction", "time / retrain", 100),
    ("method_seconds", "time s", 1),
    ("steps", "steps", 1),
]


def _mean_sd(xs: list[float | None], scale: float) -> str:
    vals = [x * scale for x in xs if x is not None]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


def _tally(rows: list[dict[str, Any]]) -> str:
    """Verdicts over seeds, e.g. ``2 pass, 1 inconclusive``."""
    counts = Counter(str(r["verdict"]) for r in rows)
    return ", ".join(f"{counts[v]} {v}" for v in ("pass", "inconclusive", "fail", "unverified") if counts[v])


def summarise(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Mean ± sd over seeds per (dataset, forget design, method), in grid order."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["forget"], row["label"]), []).append(row)
    header = ["dataset", "forget set", "method", "seeds", "verdicts", *(h for _, h, _ in SUMMARY_METRICS)]
    body = [
        [d, f, m, str(len(rs)), _tally(rs), *(_mean_sd([r[c] for r in rs], s) for c, _, s in SUMMARY_METRICS)]
        for (d, f, m), rs in groups.items()
    ]
    return header, body


def markdown_table(header: list[str], body: list[list[Any]]) -> str:
    """A GitHub markdown table; cells are shown with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def write_summary(result: StudyResult, rows: list[dict[str, Any]], path: Path) -> None:
    header, body = summarise(rows)
    t = result.timings
    lines = [
        f"# Study: {result.name}",
        "",
        result.config.description or "",
        "",
        f"- Command: `{result.command}`",
        f"- Date: {result.started_at:%Y-%m-%d %H:%M} UTC; machine: {result.machine}; "
        f"medforget {result.medforget_version}",
        f"- Seeds: {', '.join(map(str, result.config.seeds))}; recipes: "
        + "; ".join(
            f"{d.name} {d.train.arch} {d.train.epochs} epochs, batch {d.train.batch_size}, {d.train.optimizer} "
            f"lr {d.train.lr}"
            for d in result.config.datasets
        ),
        f"- This invocation: wall time {t.wall_seconds:.0f} s, of which {100 * (1 - t.overhead_fraction):.1f}% in "
        f"forward/backward passes; {t.originals_trained} original model(s) trained, {t.runs_done} runs done, "
        f"{t.runs_reused} reused from an earlier invocation"
        + (f"; **{t.runs_missing} runs of the grid not finished yet (left out)**" if t.runs_missing else ""),
        f"- Compute of all {len(rows)} runs as first done (every method and retrain, original models excluded): "
        f"{sum(r['method_seconds'] or 0.0 for r in rows):.0f} s",
        "",
        "All figures in percent (points for differences), mean ± sd over seeds. *avg gap*: mean |unlearned − "
        "retrain| over retain, forget and test accuracy and MIA efficacy (0 = indistinguishable from retraining). "
        "*FNR − retrain*: missed-disease rate on test above the retrained model's (positive = clinical risk). "
        "*time / retrain*: the method's wall time as a share of retraining from scratch.",
        "",
        markdown_table(header, body),
        "",
        "## Findings",
        "",
        *(f"- {f}" for f in result.findings),
        "",
    ]
    if result.plots:
        lines += ["## Plots", ""]
        lines += [f"![{Path(p).stem}](plots/{Path(p).name})" for p in result.plots]
        lines.append("")
    with atomic_path(path, force=True) as tmp:
        tmp.write_text("\n".join(lines))
