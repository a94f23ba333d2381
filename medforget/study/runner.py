"""Running a study: the grid, the cached originals and runs, resumable, with one progress bar."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from medforget import __version__, progress
from medforget.cache import ModelStore, original_key
from medforget.config import TrainConfig, UnlearnSettings
from medforget.data import DataPaths, Dataset, load_dataset
from medforget.engine import compute_clock
from medforget.fileio import atomic_path, sha256_file
from medforget.request import DeletionRequest, design_request
from medforget.study.config import DatasetConfig, ForgetDesign, StudyConfig, method_params
from medforget.study.findings import study_findings
from medforget.study.plots import write_plots
from medforget.study.tables import tidy_row, write_csv, write_summary
from medforget.verify.report import UnlearnReport

log = logging.getLogger(__name__)


def ensure_original(
    dataset: Dataset, recipe: TrainConfig, device: str = "auto", train_missing: bool = True
) -> tuple[Path, str, bool] | None:
    """The cached original model for ``dataset`` and ``recipe``, trained now if missing.

    Returns ``(path, sha256, trained_now)``, or None when it is missing and ``train_missing`` is off.
    A damaged cache entry is retrained, never trusted.
    """
    from medforget.train import train

    store = ModelStore("originals")
    key = original_key(dataset.spec, recipe)
    path = store.path(key)
    cached = store.load(key)
    if cached is not None:
        return path, cached.sha256, False
    if not train_missing:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = train(dataset, recipe, path, device=device, force=True)
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
    original_sha: str,
    sample_ids: list[str],
    method: str,
    params: dict[str, Any],
    seed: int,
    cfg: StudyConfig,
    calibration: str | None = None,
) -> str:
    """Everything that determines one run's report: a run whose key changed is done again."""
    h = hashlib.sha256()
    for part in (
        original_sha,
        "\n".join(sample_ids),
        method,
        json.dumps(params, sort_keys=True),
        str(seed),
        str(cfg.fn_cost),
        str(cfg.fp_cost),
        f"retrains={cfg.retrains}",
        sha256_file(Path(calibration)) if calibration else "no calibration",
        __version__,
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def read_run(path: Path, key: str) -> RunRecord | None:
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


def study_result_schema() -> dict[str, Any]:
    return StudyResult.model_json_schema()


def _machine() -> str:
    import torch

    system = f"{platform.system()} {platform.release()}"
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {system}, torch {torch.__version__}"


@contextlib.contextmanager
def _resume_hint(out: Path, runs_done: Any) -> Iterator[None]:
    """On Ctrl-C, say what was kept: every finished run is on disk and the same command resumes."""
    try:
        yield
    except KeyboardInterrupt:
        msg = "study interrupted after %d new runs; they are saved in %s. Run the same command to resume."
        log.warning(msg, runs_done(), out)
        raise


def _estimate(n_train: int, recipe: TrainConfig, n_forget: int) -> dict[str, float]:
    """Relative cost (images through the network) of each unit, so the ETA weighs retrains properly."""
    return {
        "original": recipe.epochs * n_train,
        "retrain": recipe.epochs * (n_train - n_forget),
        "method": 0.15 * recipe.epochs * n_train,
    }


def run_one(original: Path, request: DeletionRequest, run: RunSettings, keep: Path | None = None) -> UnlearnReport:
    """One grid cell: the same computation as ``medforget unlearn``, returning the report.

    Nothing is written unless ``keep`` names a file for the unlearned checkpoint (a study's value is
    its reports; a 45 MB model per run is only kept when asked).
    """
    from medforget.session import open_task
    from medforget.unlearn import Outputs, run_unlearning, write_outputs

    s = run.settings
    task = open_task(original, request, run.data, s.device, None, s.allow_class_removal)
    result = run_unlearning(task, s)
    if keep is None:
        return result.report
    keep.parent.mkdir(parents=True, exist_ok=True)
    return write_outputs(result, Outputs(checkpoint=keep, force=True), key=None)


class RunSettings(BaseModel):
    """Everything one grid cell's run needs besides the original model and the request."""

    settings: UnlearnSettings
    data: DataPaths = Field(default_factory=DataPaths)


@dataclass
class _Grid:
    """The state of one invocation: counts, records, and how to run or reuse each cell."""

    cfg: StudyConfig
    out: Path
    params: dict[str, dict[str, Any]]
    data_root: Path | None
    report_only: bool
    keep_models: bool
    records: list[RunRecord] = field(default_factory=list)
    trained: int = 0
    done: int = 0
    reused: int = 0
    missing: int = 0

    def dataset(self, dc: DatasetConfig, ds: Dataset, requests: dict[tuple[str, str, int], Any], bar: Any) -> None:
        bar.note(f"{ds.name}: original model")
        found = ensure_original(ds, dc.train, self.cfg.device, train_missing=not self.report_only)
        if found is None:  # report-only and no original yet: nothing of this dataset can have run
            self.missing += len(self.cfg.forget) * len(self.cfg.seeds) * len(self.cfg.methods)
            return
        original, sha, fresh = found
        self.trained += fresh
        bar.advance(_estimate(len(ds.train), dc.train, 0)["original"])
        for fd in self.cfg.forget:
            for seed in self.cfg.seeds:
                self.cell(dc, ds, fd, seed, requests[(dc.name, fd.name, seed)], (original, sha), bar)

    def cell(self, dc: DatasetConfig, ds: Dataset, fd: ForgetDesign, seed: int, req: Any, orig: Any, bar: Any) -> None:
        original, sha = orig
        ids = list(req.sample_ids) + [f"patient:{p}" for p in req.patient_ids]
        est = _estimate(len(ds.train), dc.train, len(req.sample_ids) or round(fd.fraction * len(ds.train)))
        # retrain first: every other method of this cell reuses the cached baseline
        for m in sorted(self.cfg.methods, key=lambda m: m.method != "retrain"):
            key = run_key(sha, ids, m.method, self.params[m.name], seed, self.cfg, dc.calibrations.get(fd.name))
            path = self.out / "runs" / ds.name / fd.name / f"seed{seed}" / f"{m.name}.json"
            rec = read_run(path, key)
            cost = est["retrain"] if m.method == "retrain" else est["method"]
            if rec is None and self.report_only:
                self.missing += 1
                continue
            if rec is None:
                bar.note(f"{ds.name} {fd.name} seed {seed}: {m.name}")
                calibration = dc.calibrations.get(fd.name)
                settings = UnlearnSettings(
                    retrains=self.cfg.retrains,
                    calibration=Path(calibration) if calibration else None,
                    method=m.method,
                    preset=m.preset,
                    params=self.params[m.name],
                    seed=seed,
                    fn_cost=self.cfg.fn_cost,
                    fp_cost=self.cfg.fp_cost,
                    allow_class_removal=True,
                    device=self.cfg.device,
                )
                run = RunSettings(settings=settings, data=DataPaths(data_root=self.data_root, manifest=dc.manifest))
                keep = path.with_suffix(".safetensors") if self.keep_models else None
                report = run_one(original, req, run, keep)
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
                self.done += 1
                if m.method != "retrain":
                    cost += est["retrain"] * report.cost.retrains_trained
            else:
                self.reused += 1
            self.records.append(rec)
            bar.advance(cost)


def run_study(
    cfg: StudyConfig,
    out_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    command: str | None = None,
    plots: bool = True,
    report_only: bool = False,
    keep_models: bool = False,
) -> StudyResult:
    """Run (or resume) every cell of the grid, then write results, summary, plots and ``study.json``.

    Args:
        cfg: the validated study config.
        out_dir: output folder (default ``studies/out/<name>``).
        data_root: the MedMNIST folder.
        command: the command line to record (default: this process's).
        plots: write the PNG plots.
        report_only: train and run nothing; summarise the runs already finished (for example while
            another process works through the grid) and count the rest as missing.
        keep_models: also write each run's unlearned checkpoint next to its report.

    Returns:
        The study's record, also written to ``study.json``.
    """
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
    grid = _Grid(cfg, out, params, Path(data_root) if data_root else None, report_only, keep_models)
    with progress.track("study", _total_cost(cfg, datasets)) as bar, _resume_hint(out, lambda: grid.done):
        for dc, ds in datasets:
            grid.dataset(dc, ds, requests, bar)
    wall = time.perf_counter() - wall0
    compute = compute_clock.seconds - compute0
    timings = StudyTimings(
        wall_seconds=round(wall, 2),
        compute_seconds=round(compute, 2),
        overhead_fraction=round(max(0.0, 1 - compute / wall), 4) if wall else 0.0,
        originals_trained=grid.trained,
        runs_done=grid.done,
        runs_reused=grid.reused,
        runs_missing=grid.missing,
    )
    return _write_results(cfg, out, grid.records, timings, started, command, plots)


def _total_cost(cfg: StudyConfig, datasets: list[tuple[DatasetConfig, Dataset]]) -> float:
    total = 0.0
    for dc, ds in datasets:
        total += _estimate(len(ds.train), dc.train, 0)["original"]
        for fd in cfg.forget:
            est = _estimate(len(ds.train), dc.train, round(fd.fraction * len(ds.train)))
            per_seed = [est["retrain"] if m.method == "retrain" else est["method"] for m in cfg.methods]
            total += len(cfg.seeds) * (est["retrain"] * cfg.retrains + sum(per_seed))  # the K retrains, the runs
    return total


def _write_results(
    cfg: StudyConfig,
    out: Path,
    records: list[RunRecord],
    timings: StudyTimings,
    started: datetime,
    command: str | None,
    plots: bool,
) -> StudyResult:
    rows = [tidy_row(r) for r in records]
    write_csv(rows, out / "results.csv")
    plot_files = write_plots(rows, out / "plots") if plots else []
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
        findings=study_findings(rows),
    )
    write_summary(result, rows, out / "summary.md")
    with atomic_path(out / "study.json", force=True) as tmp:
        tmp.write_text(result.model_dump_json(indent=2))
    return result
