"""``medforget study``: a grid of unlearning experiments from one config file, resumable and cached.

A study answers the questions a model owner asks before trusting an unlearning method on their
own data: does it match retraining on the retain and forget sets, what does it cost in test
accuracy and missed disease, does that grow with the size of the request, is it fair to easy and
hard samples? The grid is datasets x forget designs x seeds x methods.

Every expensive result is addressed by its content, so an interrupted study resumes and a re-run
does no work twice:

* original models: ``<cache>/originals/<sha256(data spec, training recipe)>.safetensors``, shared by
  every study and by ``medforget tune``;
* retrain baselines: ``<cache>/baselines/`` (the same cache ``medforget unlearn`` uses);
* runs: ``<out>/runs/<dataset>/<forget>/seed<k>/<method>.report.json``, each holding the hash of
  everything that determined it; a run whose inputs changed is done again.

Output layout (``<out>`` defaults to ``studies/out/<study name>``)::

    study.json        the validated config, medforget version, machine, command, timings
    results.csv       one tidy row per (dataset, forget design, method, seed)
    summary.md        mean ± sd over seeds, findings, plots
    plots/*.png       test accuracy and FNR vs forget size; avg gap vs cost; difficulty slices
    runs/...          the full JSON report of every run
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medforget import __version__
from medforget.data import Dataset, DataSpec, load_dataset
from medforget.engine import TrainConfig, compute_clock, stderr
from medforget.errors import MedforgetError, first_problem
from medforget.fileio import atomic_path, cache_dir, read_document
from medforget.methods import get_method, list_methods
from medforget.report import UnlearnReport
from medforget.request import design_request

# --------------------------------------------------------------------------- config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Strict):
    """One dataset and the recipe its original model (and every retrain) is trained with."""

    name: str = Field(description="MedMNIST flag (breastmnist, pneumoniamnist, dermamnist, pathmnist...)")
    size: int = Field(28, description="Image side in pixels")
    positive: list[str] = Field(default_factory=list, description="Disease class(es); default per dataset")
    binary: bool = Field(False, description="Collapse a multi-class dataset to positive vs negative")
    manifest: str | None = Field(None, description="Patient/attribute manifest CSV (needed for patient designs)")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Recipe of the original and retrain models")


class ForgetDesign(_Strict):
    """How a synthetic deletion request is drawn from the training split (a new draw per seed)."""

    name: str = Field(description="Label used in tables, plots and the run folder (e.g. random20)")
    design: Literal["random", "positive-heavy", "positive-only", "patients"] = Field(
        description="random samples; mostly/only the disease class; or whole patients (needs a manifest for "
        "multi-image patients)"
    )
    fraction: float = Field(gt=0, lt=1, description="Share of the training samples (of patients for 'patients')")
    positive_share: float = Field(0.8, ge=0, le=1, description="Disease share of a positive-heavy request")


class MethodRun(_Strict):
    """A method and its parameters; ``label`` tells two settings of one method apart."""

    method: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    config: str | None = Field(None, description="Parameters from a file (e.g. written by medforget tune)")

    @property
    def name(self) -> str:
        return self.label or self.method


class StudyConfig(_Strict):
    """A study: the grid, and what to measure. Validated before any work starts."""

    name: str = Field(description="Names the output folder")
    description: str = ""
    datasets: list[DatasetConfig] = Field(min_length=1)
    forget: list[ForgetDesign] = Field(min_length=1)
    methods: list[MethodRun] = Field(min_length=1, description="Method names or {method, label, params} tables")
    seeds: list[int] = Field(
        default=[0],
        min_length=1,
        description="Each seed draws new forget sets and seeds "
        "the methods; the original model and retrain use the recipe's own seed",
    )
    fn_cost: float = Field(5.0, ge=0)
    fp_cost: float = Field(1.0, ge=0)
    device: str = "auto"

    @field_validator("methods", mode="before")
    @classmethod
    def _names_to_runs(cls, v: Any) -> Any:
        return [{"method": m} if isinstance(m, str) else m for m in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        known = set(list_methods())
        for m in self.methods:
            if m.method not in known:
                raise ValueError(f"unknown method {m.method!r}; known: {', '.join(sorted(known))}")
        for what, names in (
            ("method label", [m.name for m in self.methods]),
            ("forget design name", [f.name for f in self.forget]),
            ("dataset", [d.name for d in self.datasets]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {what}: {', '.join(dupes)} (give each a distinct label)")
        return self


def load_study_config(path: str | Path) -> StudyConfig:
    """Read a TOML or YAML study config; any problem becomes one clear line."""
    path = Path(path)
    try:
        cfg = StudyConfig.model_validate(read_document(path, "study config"))
    except ValidationError as exc:
        raise MedforgetError(f"study config {path}: {first_problem(exc, '(top level)')}") from None
    for m in cfg.methods:
        if m.config is not None:
            cfg_path = (path.parent / m.config) if not Path(m.config).is_absolute() else Path(m.config)
            m.config = str(cfg_path)
            if not cfg_path.exists():
                raise MedforgetError(f"study config {path}: method {m.name}: config file {cfg_path} not found")
    return cfg


def method_params(run: MethodRun) -> dict[str, Any]:
    """A run's parameters: its config file (if any), then its inline ``params`` on top, validated."""
    from medforget.tune import read_method_config

    params: dict[str, Any] = {}
    if run.config:
        params.update(read_method_config(run.config, run.method).params)
    params.update(run.params)
    return get_method(run.method).parse_params(params).model_dump()


# --------------------------------------------------------------------------- originals


def original_key(spec: DataSpec, recipe: TrainConfig) -> str:
    """Content address of an original model: the data it was built from and the recipe."""
    h = hashlib.sha256()
    h.update(spec.model_dump_json().encode())
    h.update(recipe.model_dump_json().encode())
    return h.hexdigest()


def ensure_original(
    dataset: Dataset, recipe: TrainConfig, device: str = "auto", show_progress: bool = True, train_missing: bool = True
) -> tuple[Path, str, bool] | None:
    """The cached original model for ``dataset`` and ``recipe``, trained now if missing.

    Returns ``(path, sha256, trained_now)``, or None when it is missing and ``train_missing`` is off.
    A damaged cache entry is retrained, never trusted.
    """
    from medforget.checkpoint import load_checkpoint
    from medforget.errors import CheckpointError
    from medforget.train import train

    path = cache_dir() / "originals" / f"{original_key(dataset.spec, recipe)}.safetensors"
    if path.exists():
        try:
            return path, load_checkpoint(path).sha256, False
        except CheckpointError:
            path.unlink(missing_ok=True)
    if not train_missing:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = train(dataset, recipe, path, device=device, force=True, show_progress=show_progress)
    return path, summary.sha256, True


# --------------------------------------------------------------------------- runs


class RunRecord(BaseModel):
    """What a run folder holds next to the report: the key that makes it reusable."""

    key: str
    dataset: str
    forget: str
    fraction: float
    design: str
    method: str
    label: str
    seed: int
    report: UnlearnReport


def run_key(
    original_sha: str, sample_ids: list[str], method: str, params: dict[str, Any], seed: int, cfg: StudyConfig
) -> str:
    h = hashlib.sha256()
    for part in (
        original_sha,
        "\n".join(sample_ids),
        method,
        json.dumps(params, sort_keys=True),
        str(seed),
        str(cfg.fn_cost),
        str(cfg.fp_cost),
        __version__,
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _read_run(path: Path, key: str) -> RunRecord | None:
    if not path.exists():
        return None
    try:
        rec = RunRecord.model_validate_json(path.read_text())
    except (ValidationError, ValueError):
        return None
    return rec if rec.key == key else None


def _patient_request(dataset: Dataset, fraction: float, seed: int):
    """Whole patients: a ``fraction`` of the training split's patients, every image of each."""
    import torch

    from medforget.request import DeletionRequest

    patients = sorted(set(dataset.train.patient_ids))
    n = max(1, round(fraction * len(patients)))
    pick = torch.randperm(len(patients), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    return DeletionRequest(
        request_id=f"{dataset.name}-patients-{round(100 * fraction)}pct-seed{seed}",
        reason=f"synthetic withdrawal of {100 * fraction:g}% of training patients",
        dataset=dataset.name,
        patient_ids=sorted(patients[i] for i in pick),
    )


def make_request(dataset: Dataset, design: ForgetDesign, seed: int):
    if design.design == "patients":
        return _patient_request(dataset, design.fraction, seed)
    return design_request(dataset, design.design, design.fraction, seed, design.positive_share)


# --------------------------------------------------------------------------- results


COLUMNS = [
    "dataset", "forget", "design", "fraction", "method", "label", "seed", "n_forget", "n_forget_positive",
    "verdict", "average_gap",
    *(f"{m}_{s}_{k}" for m in ("unlearned", "retrain", "original") for s in ("retain", "forget", "test")
      for k in ("accuracy", "fnr", "fpr", "clinical_cost")),
    "unlearned_mia", "retrain_mia", "original_mia",
    "test_accuracy_drop", "test_fnr_increase",
    *(f"{m}_forget_{d}_accuracy" for m in ("unlearned", "retrain") for d in ("easy", "medium", "hard")),
    "method_seconds", "retrain_seconds", "time_fraction", "params",
]  # fmt: skip


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
        "params": json.dumps(r.params, sort_keys=True),
    }
    for m in ("unlearned", "retrain", "original"):
        ev = getattr(r, m)
        for s in ("retain", "forget", "test"):
            for k in ("accuracy", "fnr", "fpr", "clinical_cost"):
                row[f"{m}_{s}_{k}"] = getattr(getattr(ev, s), k) if ev is not None else None
        row[f"{m}_mia"] = ev.mia.forget_non_member_rate if ev is not None else None
    if r.retrain is not None:
        row["test_accuracy_drop"] = _sub(r.retrain.test.accuracy, r.unlearned.test.accuracy)
        row["test_fnr_increase"] = _sub(r.unlearned.test.fnr, r.retrain.test.fnr)
    diff = r.analysis.difficulty if r.analysis is not None else None
    for sl in diff.slices if diff is not None else []:
        row[f"unlearned_forget_{sl.name}_accuracy"] = sl.unlearned.accuracy
        row[f"retrain_forget_{sl.name}_accuracy"] = sl.retrain.accuracy if sl.retrain is not None else None
    row["method_seconds"] = r.cost.method_seconds
    row["retrain_seconds"] = r.cost.retrain_seconds
    if r.cost.retrain_seconds:
        row["time_fraction"] = r.cost.method_seconds / r.cost.retrain_seconds
    return {c: row.get(c) for c in COLUMNS}


def _sub(a: float | None, b: float | None) -> float | None:
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
    ("unlearned_mia", "MIA eff.", 100),
    ("average_gap", "avg gap", 100),
    ("time_fraction", "time / retrain", 100),
    ("method_seconds", "time s", 1),
]


def _mean_sd(xs: list[float | None], scale: float) -> str:
    vals = [x * scale for x in xs if x is not None]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


def summarise(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Mean ± sd over seeds per (dataset, forget design, method), in grid order."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["forget"], row["label"]), []).append(row)
    header = ["dataset", "forget set", "method", "seeds", *(h for _, h, _ in SUMMARY_METRICS)]
    body = [
        [d, f, m, str(len(rs)), *(_mean_sd([r[c] for r in rs], s) for c, _, s in SUMMARY_METRICS)]
        for (d, f, m), rs in groups.items()
    ]
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the study


class StudyTimings(BaseModel):
    wall_seconds: float
    compute_seconds: float = Field(description="Forward/backward passes and optimizer steps")
    overhead_fraction: float = Field(description="Share of wall time outside forward/backward passes")
    originals_trained: int
    runs_done: int
    runs_reused: int
    runs_missing: int = Field(0, description="Grid cells left out by a report-only invocation (not run yet)")


class StudyResult(BaseModel):
    """What ``medforget study`` returns and records in ``study.json``."""

    name: str
    out_dir: str
    medforget_version: str
    started_at: datetime
    machine: str
    command: str
    config: StudyConfig
    timings: StudyTimings
    results_csv: str
    summary_md: str
    plots: list[str]
    findings: list[str]


def study_config_schema() -> dict[str, Any]:
    return StudyConfig.model_json_schema()


def study_result_schema() -> dict[str, Any]:
    return StudyResult.model_json_schema()


def _machine() -> str:
    import torch

    system = f"{platform.system()} {platform.release()}"
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {system}, torch {torch.__version__}"


@contextlib.contextmanager
def _grid_progress(total: float, enabled: bool) -> Iterator[Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]study"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        disable=not enabled,
    )
    with progress:
        yield progress, progress.add_task("study", total=total, info="")


@contextlib.contextmanager
def _resume_hint(out: Path, runs_done: Any) -> Iterator[None]:
    """On Ctrl-C, say what was kept: every finished run is on disk and the same command resumes."""
    try:
        yield
    except KeyboardInterrupt:
        stderr.print(
            f"study interrupted after {runs_done()} new runs; they are saved in {out}. Run the same command to resume."
        )
        raise


def _estimate(n_train: int, recipe: TrainConfig, n_forget: int) -> dict[str, float]:
    """Relative cost (images through the network) of each unit, so the ETA weighs retrains properly."""
    return {
        "original": recipe.epochs * n_train,
        "retrain": recipe.epochs * (n_train - n_forget),
        "method": 0.15 * recipe.epochs * n_train,
    }


def run_study(
    cfg: StudyConfig,
    out_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    show_progress: bool = True,
    command: str | None = None,
    plots: bool = True,
    report_only: bool = False,
) -> StudyResult:
    """Run (or resume) every cell of the grid, then write results, summary, plots and ``study.json``.

    ``report_only`` trains and runs nothing: it summarises the runs already finished (for example while
    another process is still working through the grid) and counts the rest as missing.
    """
    from medforget.unlearn import unlearn

    out = Path(out_dir) if out_dir is not None else Path("studies/out") / cfg.name
    started = datetime.now(timezone.utc)
    wall0, compute0 = time.perf_counter(), compute_clock.seconds
    params = {m.name: method_params(m) for m in cfg.methods}  # bad parameters fail before any training
    datasets = [
        (dc, load_dataset(dc.name, dc.size, data_root, dc.positive or None, dc.binary, dc.manifest))
        for dc in cfg.datasets
    ]
    requests = {
        (dc.name, fd.name, seed): make_request(ds, fd, seed) for dc, ds in datasets for fd in cfg.forget
        for seed in cfg.seeds
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)  # only now: bad parameters or data leave nothing behind
    total = 0.0
    for dc, ds in datasets:
        n_f = {fd.name: round(fd.fraction * len(ds.train)) for fd in cfg.forget}
        total += _estimate(len(ds.train), dc.train, 0)["original"]
        for fd in cfg.forget:
            est = _estimate(len(ds.train), dc.train, n_f[fd.name])
            total += len(cfg.seeds) * (est["retrain"] + est["method"] * sum(m.method != "retrain" for m in cfg.methods))
    records: list[RunRecord] = []
    trained = done = reused = missing = 0
    with _grid_progress(total, show_progress) as (bar, job), _resume_hint(out, lambda: done):
        for dc, ds in datasets:
            bar.update(job, info=f"{ds.name}: original model")
            found = ensure_original(ds, dc.train, cfg.device, show_progress=False, train_missing=not report_only)
            if found is None:  # report-only and no original yet: nothing of this dataset can have run
                missing += len(cfg.forget) * len(cfg.seeds) * len(cfg.methods)
                continue
            original, sha, fresh = found
            trained += fresh
            bar.advance(job, _estimate(len(ds.train), dc.train, 0)["original"])
            for fd in cfg.forget:
                for seed in cfg.seeds:
                    req = requests[(dc.name, fd.name, seed)]
                    ids = list(req.sample_ids) + [f"patient:{p}" for p in req.patient_ids]
                    n_forget = len(req.sample_ids) or round(fd.fraction * len(ds.train))
                    est = _estimate(len(ds.train), dc.train, n_forget)
                    # retrain first: every other method of this cell reuses the cached baseline
                    for m in sorted(cfg.methods, key=lambda m: m.method != "retrain"):
                        key = run_key(sha, ids, m.method, params[m.name], seed, cfg)
                        path = out / "runs" / ds.name / fd.name / f"seed{seed}" / f"{m.name}.json"
                        rec = _read_run(path, key)
                        cost = est["retrain"] if m.method == "retrain" else est["method"]
                        if rec is None and report_only:
                            missing += 1
                            continue
                        if rec is None:
                            bar.update(job, info=f"{ds.name} {fd.name} seed {seed}: {m.name}")
                            scratch = out / f".scratch-{os.getpid()}.safetensors"  # studies may share an out dir
                            report = unlearn(
                                original,
                                req,
                                m.method,
                                scratch,
                                params=params[m.name],
                                data_root=data_root,
                                manifest=dc.manifest,
                                device=cfg.device,
                                seed=seed,
                                fn_cost=cfg.fn_cost,
                                fp_cost=cfg.fp_cost,
                                force=True,
                                show_progress=False,
                                allow_class_removal=True,
                            )
                            scratch.unlink(missing_ok=True)  # reports, not 45 MB per run
                            rec = RunRecord(
                                key=key,
                                dataset=ds.name,
                                forget=fd.name,
                                fraction=fd.fraction,
                                design=fd.design,
                                method=m.method,
                                label=m.name,
                                seed=seed,
                                report=report,
                            )
                            path.parent.mkdir(parents=True, exist_ok=True)
                            with atomic_path(path, force=True) as tmp:
                                tmp.write_text(rec.model_dump_json(indent=1))
                            done += 1
                            if m.method != "retrain" and report.cost.baseline_source == "retrain (trained now)":
                                cost += est["retrain"]
                        else:
                            reused += 1
                        records.append(rec)
                        bar.advance(job, cost)
    rows = [tidy_row(r) for r in records]
    write_csv(rows, out / "results.csv")
    plot_files = write_plots(rows, out / "plots") if plots else []
    findings = study_findings(rows)
    wall = time.perf_counter() - wall0
    compute = compute_clock.seconds - compute0
    timings = StudyTimings(
        wall_seconds=round(wall, 2),
        compute_seconds=round(compute, 2),
        overhead_fraction=round(max(0.0, 1 - compute / wall), 4) if wall else 0.0,
        originals_trained=trained,
        runs_done=done,
        runs_reused=reused,
        runs_missing=missing,
    )
    result = StudyResult(
        name=cfg.name,
        out_dir=str(out),
        medforget_version=__version__,
        started_at=started,
        machine=_machine(),
        command=command or " ".join(["medforget", *sys.argv[1:]]),
        config=cfg,
        timings=timings,
        results_csv=str(out / "results.csv"),
        summary_md=str(out / "summary.md"),
        plots=[str(p) for p in plot_files],
        findings=findings,
    )
    write_summary(result, rows, out / "summary.md")
    with atomic_path(out / "study.json", force=True) as tmp:
        tmp.write_text(result.model_dump_json(indent=2))
    return result


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


# --------------------------------------------------------------------------- findings


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.mean(vals) if vals else None


def study_findings(rows: list[dict[str, Any]]) -> list[str]:
    """The two studies' claims, checked on this grid's numbers; each finding states its evidence.

    Differences are unlearned - retrain in points, averaged over seeds, per forget design (a mean
    over designs would mix a 20% and a disease-heavy request into one meaningless number).
    """
    out: list[str] = []

    def diff(rs: list[dict[str, Any]], col: str) -> float | None:
        return _mean([_sub(r[f"unlearned_{col}"], r[f"retrain_{col}"]) for r in rs])

    def pts(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:+.1f}"

    for ds in sorted({r["dataset"] for r in rows}):
        drows = [r for r in rows if r["dataset"] == ds]
        designs = list(dict.fromkeys(r["forget"] for r in drows))
        approx = [m for m in dict.fromkeys(r["label"] for r in drows) if m != "retrain"]
        for label in approx:
            rs = [r for r in drows if r["label"] == label]
            parts = []
            for f in designs:
                cell = [r for r in rs if r["forget"] == f]
                if cell:
                    retain, forget = pts(diff(cell, "retain_accuracy")), pts(diff(cell, "forget_accuracy"))
                    parts.append(f"{f}: retain {retain}, forget {forget}, test {pts(diff(cell, 'test_accuracy'))}")
            out.append(f"{ds}, {label} vs retrain (points): " + "; ".join(parts) + ".")
            sizes = sorted({r["fraction"] for r in rs if r["design"] == "random"})
            if len(sizes) > 1:
                drops = [_mean([r["test_accuracy_drop"] for r in rs if r["design"] == "random" and r["fraction"] == f])
                         for f in sizes]  # fmt: skip
                if all(d is not None for d in drops):
                    grows = drops[-1] > drops[0] + 0.005  # type: ignore[operator]
                    out.append(
                        f"{ds}, {label}: retrain's test accuracy minus this method's at random forget sizes "
                        + ", ".join(f"{100 * f:g}%: {100 * d:.1f}" for f, d in zip(sizes, drops, strict=True))
                        + f" points: the generalisation cost {'grows' if grows else 'does not grow'} with the size."
                    )
            easy = _mean([_sub(r["unlearned_forget_easy_accuracy"], r["retrain_forget_easy_accuracy"]) for r in rs])
            hard = _mean([_sub(r["unlearned_forget_hard_accuracy"], r["retrain_forget_hard_accuracy"]) for r in rs])
            if easy is not None and hard is not None:
                verdict = "treated differently" if abs(easy - hard) > 0.05 else "treated alike"
                out.append(
                    f"{ds}, {label}: forget accuracy vs retrain on the easiest third of the forget set {pts(easy)}, on "
                    f"the hardest third {pts(hard)} points (all designs): easy and hard samples are {verdict}."
                )
        for f in designs:
            fnr = {label: _mean([r["test_fnr_increase"] for r in drows if r["label"] == label and r["forget"] == f])
                   for label in approx}  # fmt: skip
            fnr = {k: v for k, v in fnr.items() if v is not None}
            if fnr:
                base = _mean([r["retrain_test_fnr"] for r in drows if r["forget"] == f])
                out.append(
                    f"{ds}, {f}: test FNR minus retrain's ({'n/a' if base is None else f'{100 * base:.1f}%'}), points: "
                    + ", ".join(f"{k} {pts(v)}" for k, v in sorted(fnr.items(), key=lambda kv: kv[1]))
                    + "."
                )
    return out


# --------------------------------------------------------------------------- plots


def write_plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Three figures per dataset; written atomically, returned in order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for ds in sorted({r["dataset"] for r in rows}):
        drows = [r for r in rows if r["dataset"] == ds]
        labels = list(dict.fromkeys(r["label"] for r in drows))
        random_rows = [r for r in drows if r["design"] == "random"]
        sizes = sorted({r["fraction"] for r in random_rows})
        if sizes:
            fig, axes = plt.subplots(1, 2, figsize=(11, 4))
            for ax, col, title in (
                (axes[0], "unlearned_test_accuracy", "Test accuracy"),
                (axes[1], "unlearned_test_fnr", "Test false-negative rate (missed disease)"),
            ):
                for label in labels:
                    ys = [_mean([r[col] for r in random_rows if r["label"] == label and r["fraction"] == f])
                          for f in sizes]  # fmt: skip
                    pts = [(100 * f, 100 * y) for f, y in zip(sizes, ys, strict=True) if y is not None]
                    if pts:
                        style = {"color": "black", "lw": 2.5, "ls": "--"} if label == "retrain" else {"marker": "o"}
                        ax.plot(*zip(*pts, strict=True), label=label, **style)
                ax.set_xlabel("random forget set, % of training samples")
                ax.set_ylabel("%")
                ax.set_title(f"{ds}: {title}")
                ax.grid(alpha=0.3)
            axes[1].legend(fontsize=8)
            files.append(_save(fig, folder / f"{ds}-vs-forget-size.png"))
        fig, ax = plt.subplots(figsize=(6, 4))
        for label in labels:
            rs = [
                r for r in drows if r["label"] == label and r["time_fraction"] is not None and r["method"] != "retrain"
            ]
            if rs:
                ax.scatter([100 * r["time_fraction"] for r in rs], [100 * r["average_gap"] for r in rs], label=label)
        ax.set_xlabel("cost: wall time, % of retraining")
        ax.set_ylabel("average gap to retrain, points")
        ax.set_title(f"{ds}: closeness to retrain vs cost")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        files.append(_save(fig, folder / f"{ds}-gap-vs-cost.png"))
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / max(len(labels), 1)
        thirds = ("easy", "medium", "hard")
        for i, label in enumerate(labels):
            rs = [r for r in drows if r["label"] == label]
            ys = [_mean([r[f"unlearned_forget_{t}_accuracy"] for r in rs]) for t in thirds]
            ax.bar([j + i * width for j in range(3)], [100 * (y or 0) for y in ys], width, label=label)
        ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(3)])
        ax.set_xticklabels([f"{t} third" for t in thirds])
        ax.set_ylabel("forget accuracy, %")
        ax.set_title(f"{ds}: forget accuracy by sample difficulty (original model's loss)")
        ax.legend(fontsize=7, ncol=2)
        files.append(_save(fig, folder / f"{ds}-difficulty.png"))
    return files


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
