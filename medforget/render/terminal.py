"""What the command line shows people: Rich tables and lines, progress bars, log messages.

Every function takes a library result and returns a renderable; none computes anything. Text that
comes from users (request IDs, reasons, file names, IDs) is always wrapped in :class:`rich.text.Text`,
never interpreted as Rich markup, so ``[/bold]`` in a request ID prints as itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from medforget.render.format import DASH, cost, num, pct
from medforget.verify.metrics import BY_KEY

if TYPE_CHECKING:
    from medforget.audit.report import AuditReport
    from medforget.checkpoint import LoadedCheckpoint
    from medforget.ledger import LedgerEntry, LedgerVerification
    from medforget.methods import Stopping
    from medforget.request import ResolvedRequest
    from medforget.train import TrainSummary
    from medforget.tune import MethodConfig
    from medforget.verify.report import UnlearnReport

STATUS_STYLE = {
    "pass": "green",
    "fail": "red",
    "inconclusive": "yellow",
    "unverified": "yellow",
    "unknown": "yellow",
    "skipped": "dim",
}


def _t(value: object, style: str = "") -> Text:
    """User-supplied text, shown literally (never parsed as markup)."""
    return Text(str(value), style=style)


def _short(h: str | None) -> str:
    return "none" if h is None else h[:12]


# --------------------------------------------------------------------------- train, info, methods


def train_summary(s: TrainSummary) -> RenderableType:
    """Where the model went, and its held-out results with the missed-disease rate."""
    head = _t(
        f"saved {s.checkpoint}  ({s.arch}, {s.dataset}, best epoch {s.best_epoch}/{s.epochs}, {s.seconds:.0f} s, "
        f"{s.images_per_second:.0f} img/s)",
        "bold green",
    )
    table = Table(title="held-out results")
    for col in ("split", "n", "accuracy", "missed disease (FNR)", "false alarms (FPR)"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for name, m in (("val", s.val), ("test", s.test)):
        table.add_row(name, str(m.n), pct(m.accuracy), pct(m.fnr), pct(m.fpr))
    return Group(head, table)


def checkpoint_info(ck: LoadedCheckpoint) -> RenderableType:
    """What a checkpoint is: model, data, recipe, lineage and forgotten samples."""
    m, cfg = ck.meta, ck.meta.train_config
    forgotten = f"{len(m.forgotten.sample_hashes)} samples, {len(m.forgotten.patient_hashes)} patients"
    if m.forgotten.key_id:
        forgotten += f" (keyed hashes, key id {m.forgotten.key_id})"
    elif m.forgotten.salt:
        forgotten += " (salted hashes)"
    rows = [
        ("file", ck.path),
        ("sha256", ck.sha256),
        ("integrity", integrity_line(ck)),
        ("created", f"{m.created_at} by medforget {m.medforget_version}"),
        ("model", f"{m.arch}, {m.in_channels}x{m.image_size}x{m.image_size} input, {m.num_classes} classes"),
        ("classes", ", ".join(f"{i}={c}" for i, c in enumerate(m.classes))),
        ("disease (positive)", ", ".join(m.classes[i] for i in m.positive)),
        (
            "dataset",
            f"{m.dataset.spec.name} ({m.dataset.spec.source}, {m.dataset.spec.size} px), "
            f"{m.dataset.n_train} training samples",
        ),
        ("data fingerprint", m.dataset.fingerprint),
        (
            "training",
            f"{cfg.epochs} epochs, {cfg.optimizer} lr {cfg.lr}, batch {cfg.batch_size}, {cfg.schedule}, "
            f"seed {cfg.seed}",
        ),
        ("metrics", ", ".join(f"{k} {v:.4f}" for k, v in m.metrics.items()) or "none"),
        ("parent (lineage)", m.parent_sha256 or "none (original training run)"),
        ("forgotten", forgotten),
        ("recorded outputs", f"logits on {', '.join(m.recorded_outputs)}" if m.recorded_outputs else "none"),
    ]
    if m.operating_point:
        op = m.operating_point
        caveat = "" if op.guaranteed else "; not guaranteed on new patients (few disease cases in validation)"
        rows.append(
            (
                "operating point",
                f"disease logits {op.offset:+.3f}: validation sensitivity "
                f"{op.val_sensitivity or 0:.2f} (target {op.target_sensitivity:.2f}){caveat}",
            )
        )
    if m.unlearning:
        u = m.unlearning
        params = ", ".join(f"{k}={v}" for k, v in u.params.items())
        ref = u.request_ref[:12] if u.request_ref else u.request_id or "-"
        rows.append(("unlearning", f"{u.method} for request {ref}, {params}"))
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows:
        t.add_row(k, _t(v))
    return t


def integrity_line(ck: LoadedCheckpoint) -> str:
    """How much of the checkpoint's integrity was actually checked."""
    base = "ok (weights and metadata hashes verified"
    if ck.signature_verified:
        return base + "; signature verified)"
    if ck.signed:
        return base + "; signed, signature NOT checked: no key given)"
    return base + "; unsigned: a deliberate rewrite would not be detected)"


def methods_table(methods: list[Any]) -> RenderableType:
    """The registered unlearning methods with their defaults."""
    t = Table("method", "what it does", "parameters (defaults)", "--preset")
    for m in methods:
        params = ", ".join(f"{k}={v}" for k, v in m.params().model_dump().items())
        t.add_row(m.name, _t(m.summary), _t(params), _t(", ".join(m.presets)))
    return t


def request_check(res: ResolvedRequest, dataset: str) -> RenderableType:
    """What a request would forget, by class."""
    t = Table("split", "class", "samples to forget", title=f"request on {dataset}")
    for c in res.counts:
        t.add_row(c.split, _t(c.label), str(c.n))
    earlier = f" ({res.previously_forgotten} already removed earlier)" if res.previously_forgotten else ""
    tail = _t(
        f"{len(res.sample_ids)} samples from {len(res.patient_ids)} patients would be forgotten; "
        f"{len(res.retain_rows)} training samples remain{earlier}"
    )
    return Group(t, tail)


# --------------------------------------------------------------------------- unlearn


def stopping_line(s: Stopping) -> str:
    """The rule's outcome, e.g. 'stopped at step 22 of 225: forget AUC 0.531, 0.522 <= 0.550 on two checks in a row;
    by class: malignant 0.590 / benign 0.240' (the last check's AUC of each class, when there are several)."""
    if s.rule == "none":
        return f"stopping rule: none, {s.steps} steps"
    measure = "forget AUC" if s.rule == "auc" else "probe forget accuracy"
    last = ", ".join("n/a" if c.value is None else f"{c.value:.3f}" for c in s.checks[-2:]) or "no check"
    target = f"{s.target:.3f}" if s.target is not None else "?"
    target += " (the calibrated retrains')" if s.target_from == "calibration" else ""
    per_class = s.checks[-1].by_class if s.checks else {}
    # " / " between classes: a class name may hold a comma (BreastMNIST's "normal, benign")
    classes = f"; by class: {' / '.join(f'{n} {a:.3f}' for n, a in per_class.items())}" if len(per_class) > 1 else ""
    if s.outcome == "forgotten":
        return (
            f"stopped at step {s.steps} of {s.max_steps}: {measure} {last} <= {target} on two checks in a row{classes}"
        )
    return f"ran all {s.max_steps} steps without two checks in a row at {measure} <= {target} (last: {last}{classes})"


def unlearn_report(r: UnlearnReport) -> RenderableType:
    """The verdict, then original / unlearned / retrains (mean ± sd) side by side, then every check."""
    k = len(r.retrains)
    table = Table(
        title=_t(
            f"{r.method} on request {r.request.request_id or '(no id)'}: "
            f"{r.request.n_samples} samples, {r.request.n_patients} patients forgotten"
        )
    )
    table.add_column("metric")
    for col in ("original", "unlearned", f"retrains (mean ± sd, K={k})", "gap (pts)"):
        table.add_column(col, justify="right")
    for row in r.metrics:
        m = BY_KEY[row.key]
        fmt = pct if m.is_rate else cost
        spread = "" if row.retrain_sd is None else f" ± {num(row.retrain_sd) if m.is_rate else cost(row.retrain_sd)}"
        name = row.label
        if m.key == "test_fnr":
            name = f"test missed disease, FNR ({', '.join(r.positive)})"
        elif m.key == "test_clinical_cost":
            name = f"{m.label} (FN={r.fn_cost:g}, FP={r.fp_cost:g})"
        cells = (fmt(row.original), fmt(row.unlearned), fmt(row.retrain_mean) + spread)
        gap = num(row.gap) if m.is_rate else DASH
        table.add_row(_t(name), *cells, gap, style="bold" if m.key == "test_fnr" else None)
    c = r.cost
    avg = DASH if r.average_gap is None else f"{100 * r.average_gap:.2f} pts"
    if r.average_gap is not None and r.original_average_gap is not None:
        avg += f" (before unlearning: {100 * r.original_average_gap:.2f})"
    speed = f", {c.speedup:.1f}x faster than one retrain" if c.speedup else ""
    lines: list[RenderableType] = [
        _t(r.verdict.summary, f"bold {STATUS_STYLE[r.verdict.status]}"),
        table,
        _t(
            f"average gap to the retrains: {avg}   method time: {c.method_seconds:.1f} s{speed} "
            f"(baseline: {c.baseline_source})"
        ),
    ]
    if r.stopping is not None:
        lines.append(_t(stopping_line(r.stopping)))
    if c.tuning_seconds is not None:
        pays = (
            f"; it pays for itself after {c.tuning_break_even_requests:.1f} requests"
            if c.tuning_break_even_requests is not None
            else "; this method is not faster than retraining, so tuning never pays for itself"
        )
        lines.append(_t(f"parameters tuned once (medforget tune) for {c.tuning_seconds:.0f} s{pays}"))
    lines += [_check_line(check) for check in r.verdict.checks]
    lines += [_t(f"warning: {w}", "yellow") for w in r.request.warnings]
    return Group(*lines)


MARK = {"pass": "✓", "fail": "✗", "inconclusive": "?", "unknown": "?"}


def _check_line(c: Any) -> RenderableType:
    """One verdict check: its status, the difference against tolerance and retrain noise, and why."""
    unit = (lambda x: f"{x:+.2f} SD") if c.unit == "z" else (lambda x: f"{100 * x:+.1f} pts")
    diff = DASH if c.difference is None else unit(c.difference)
    noise = DASH if c.noise_margin is None else unit(c.noise_margin).replace("+", "±", 1)
    tol = unit(c.tolerance).replace("+", "±", 1)
    text = f"  {MARK[c.status]} {c.name}: {diff} (tolerance {tol}, retrain noise {noise}): {c.reason}"
    if c.settle:
        text += f"; to settle it: {c.settle}"
    return _t(text, STATUS_STYLE[c.status])


# --------------------------------------------------------------------------- audit and ledger


def audit_report(report: AuditReport) -> RenderableType:
    """The verdict, one row per check, the lineage chain and the most exposed samples."""
    parts: list[RenderableType] = [
        _t(f"audit of {report.checkpoint} (sha256 {report.sha256})"),
        _t(report.verdict.summary, f"bold {STATUS_STYLE[report.verdict.status]}"),
    ]
    t = Table("check", "result", "details")
    for c in report.checks:
        t.add_row(c.name, _t(c.status, STATUS_STYLE[c.status]), _t(c.summary))
    parts.append(t)
    if report.lineage and report.lineage.chain:
        chain = Table("#", "type", "method", "request", "input", "output", "ok", title="lineage (newest first)")
        for lk in report.lineage.chain:
            ok = _t("yes", "green") if not lk.problems else _t("; ".join(lk.problems), "red")
            chain.add_row(
                str(lk.seq),
                lk.entry_type,
                _t(lk.method or DASH),
                _short(lk.request_ref) if lk.request_ref else DASH,
                _short(lk.input_sha256),
                _short(lk.output_sha256),
                ok,
            )
        parts.append(chain)
    if report.lira:
        lira = report.lira
        top = sorted(lira.requested, key=lambda s: -s.log_lr)[:10]
        lr = Table("sample", "label", "phi", "in mean", "out mean", "LR", title="LiRA: most member-like requested")
        for s in top:
            lr.add_row(_t(s.sample), str(s.label), f"{s.phi:.2f}", f"{s.mu_in:.2f}", f"{s.mu_out:.2f}", f"{s.lr:.3g}")
        parts.append(lr)
        rates = ", ".join(
            f"{100 * x.tpr:.0f}% at {100 * x.target_fpr:g}% (achieved {100 * x.achieved_fpr:.1f}%)"
            for x in lira.tpr_at_fpr
        )
        parts.append(_t(f"TPR at FPR: {rates}; {lira.variance} variance; {lira.seconds:.0f} s"))
    return Group(*parts)


def ledger_verification(result: LedgerVerification) -> RenderableType:
    """ok with the head hash, or one line per problem."""
    lines: list[RenderableType] = []
    if result.ok:
        macs = "" if result.macs_checked else " (MACs not checked: no key)"
        lines.append(_t(f"ok: {result.n_entries} entries, chain intact{macs}; head {result.head_hash}", "green"))
    for p in result.problems:
        seq = f" (entry {p.seq})" if p.seq is not None else ""
        lines.append(Text.assemble((p.kind, "red"), f" line {p.line}{seq}: {p.message}"))
    return Group(*lines)


def ledger_entries(entries: list[LedgerEntry]) -> RenderableType:
    """One row per entry (the ledger holds no patient ID: only keyed hashes)."""
    t = Table("#", "when", "type", "request", "method", "samples", "patients", "input", "output")
    for e in entries:
        t.add_row(
            str(e.seq),
            e.created_at,
            e.entry_type,
            _short(e.request_ref) if e.request_ref else _t(e.request_id or DASH),
            _t(e.method or DASH),
            str(len(e.sample_hashes)),
            str(len(e.patient_hashes)),
            _short(e.input_sha256),
            _short(e.output_sha256),
        )
    return t


# --------------------------------------------------------------------------- tune and study


def tune_summary(cfg: MethodConfig, out: str) -> RenderableType:
    """The tuned parameters, what tuning found and what it cost."""
    t = cfg.tuning
    assert t is not None
    lines: list[RenderableType] = [
        _t(f"{cfg.method} tuned over {t.trials} trials ({t.feasible_trials} met the FNR constraint)", "bold")
    ]
    lines += [_t(f"  {k} = {v}") for k, v in cfg.params.items()]
    pays = f"pays for itself after {t.break_even_requests:.1f} requests" if t.break_even_requests else "never pays"
    fnr = pct(t.best_fnr_increase) if t.best_fnr_increase is not None else "n/a"
    lines.append(
        _t(
            f"proxy average gap {100 * t.best_average_gap:.2f} pts, FNR vs retrain {fnr}; "
            f"tuning took {t.tuning_seconds:.0f} s and {pays}"
        )
    )
    lines.append(_t(f"wrote {out}; use it with: medforget unlearn --config {out} ..."))
    return Group(*lines)


def study_table(name: str, header: list[str], body: list[list[str]]) -> RenderableType:
    """The study's mean ± sd table."""
    table = Table(title=_t(f"study {name}: mean ± sd over seeds (%)"), show_lines=False)
    for h in header:
        table.add_column(h, justify="left" if h in ("dataset", "forget set", "method") else "right")
    for row in body:
        table.add_row(*(_t(c) for c in row))
    return table


def lines(texts: list[str], style: str = "") -> RenderableType:
    """Plain lines of text, literally."""
    return Group(*(_t(s, style) for s in texts))


__all__ = [
    "audit_report",
    "checkpoint_info",
    "integrity_line",
    "ledger_entries",
    "ledger_verification",
    "lines",
    "methods_table",
    "request_check",
    "study_table",
    "train_summary",
    "tune_summary",
    "unlearn_report",
]
