"""``medforget study --executor ray``: the same grid, its cells spread over a Ray cluster.

The originals are trained first (one Ray task per dataset), then every cell (dataset x forget
design x seed: the retrain first, then each method) is one Ray task running exactly what a local
run does (:meth:`medforget.study.runner._Grid.cell`): it reads the cell's finished runs from the
output folder and skips them (resume), takes the original and retrains from the shared cache, and
writes each new run's file. The driver collects the records and writes the same ``results.csv``,
``summary.md``, plots and ``study.json``. Only where the work runs differs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from medforget import progress
from medforget.config import RayOptions
from medforget.data import Dataset, load_dataset
from medforget.engine import compute_clock
from medforget.request import DeletionRequest
from medforget.study.config import DatasetConfig, StudyConfig, method_params
from medforget.study.runner import (
    RunRecord,
    StudyResult,
    StudyTimings,
    _Grid,
    _write_results,
    ensure_original,
    make_request,
)


class _CellJob(BaseModel):
    """One Ray task: a dataset's original (``forget`` None) or one cell of the grid."""

    config: StudyConfig
    dataset: int
    forget: int | None = None
    seed: int = 0
    request: DeletionRequest | None = None
    original: str | None = None
    original_sha: str | None = None
    out: str
    data_root: str | None = None
    keep_models: bool = False


class _CellResult(BaseModel):
    dataset: int
    original: str | None = None
    original_sha: str | None = None
    trained: bool = False
    records: list[RunRecord] = []
    done: int = 0
    reused: int = 0
    compute_seconds: float = 0.0


_DATASETS: dict[str, Dataset] = {}
"""Datasets a Ray worker loaded, kept for its next tasks (a worker process runs many cells)."""


def _dataset(dc: DatasetConfig, data_root: str | None) -> Dataset:
    key = dc.model_dump_json() + str(data_root)
    if key not in _DATASETS:
        _DATASETS.clear()
        _DATASETS[key] = load_dataset(dc.name, dc.size, data_root, dc.positive or None, dc.binary, dc.manifest)
    return _DATASETS[key]


def run_cell(payload: str) -> str:
    """In a Ray worker: train (or find) a dataset's original, or run one grid cell; returns what it did as JSON."""
    job = _CellJob.model_validate_json(payload)
    cfg, dc = job.config, job.config.datasets[job.dataset]
    clock = compute_clock.seconds
    ds = _dataset(dc, job.data_root)
    if job.forget is None:
        found = ensure_original(ds, dc.train, cfg.device)
        assert found is not None
        path, sha, fresh = found
        result = _CellResult(dataset=job.dataset, original=str(path), original_sha=sha, trained=fresh)
    else:
        params = {m.name: method_params(m) for m in cfg.methods}
        root = Path(job.data_root) if job.data_root else None
        grid = _Grid(cfg, Path(job.out), params, root, False, job.keep_models)
        original = (Path(job.original or ""), job.original_sha)
        with progress.track("cell", 1) as bar:
            grid.cell(dc, ds, cfg.forget[job.forget], job.seed, job.request, original, bar)
        result = _CellResult(dataset=job.dataset, records=grid.records, done=grid.done, reused=grid.reused)
    result.compute_seconds = compute_clock.seconds - clock
    return result.model_dump_json()


def run_study_on_ray(
    cfg: StudyConfig,
    out_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    command: str | None = None,
    plots: bool = True,
    keep_models: bool = False,
    options: RayOptions | None = None,
) -> StudyResult:
    """Run (or resume) the grid on a Ray cluster; the outputs are a local run's (see :func:`run_study`).

    Args:
        cfg: the validated study config.
        out_dir: output folder (default ``studies/out/<name>``), on storage every Ray node mounts.
        data_root: the MedMNIST folder, as the workers see it.
        command: the command line to record.
        plots: write the PNG plots.
        keep_models: also keep each run's unlearned checkpoint.
        options: the cluster's address and each run's resources (default: a local instance, 1 CPU per run).

    Returns:
        The study's record, also written to ``study.json``.
    """
    from medforget.cluster import run_all, session

    options = options or RayOptions()
    out = Path(out_dir) if out_dir is not None else Path("studies/out") / cfg.name
    started = datetime.now(timezone.utc)
    wall0 = time.perf_counter()
    for m in cfg.methods:
        method_params(m)  # bad parameters fail before any work
    datasets = [load_dataset(dc.name, dc.size, data_root, dc.positive or None, dc.binary, dc.manifest)
                for dc in cfg.datasets]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    base = {"config": cfg, "out": str(out.resolve()), "data_root": str(data_root) if data_root else None}
    n_cells = len(cfg.datasets) * len(cfg.forget) * len(cfg.seeds)
    records: list[RunRecord] = []
    counts = {"trained": 0, "done": 0, "reused": 0, "compute": 0.0}
    with session(options, preload=(__name__,)) as ray, progress.track("study (ray)", len(datasets) + n_cells) as bar:
        originals: dict[int, _CellResult] = {}
        for r in _results(run_all(ray, run_cell, [_CellJob(dataset=i, **base).model_dump_json()
                                                   for i in range(len(datasets))], options), counts):  # fmt: skip
            originals[r.dataset] = r
            bar.advance(1, f"original {cfg.datasets[r.dataset].name}")
        jobs = [
            _CellJob(dataset=i, forget=f, seed=seed, request=make_request(ds, fd, seed), original=originals[i].original,
                     original_sha=originals[i].original_sha, keep_models=keep_models, **base).model_dump_json()
            for i, ds in enumerate(datasets) for f, fd in enumerate(cfg.forget) for seed in cfg.seeds
        ]  # fmt: skip
        for r in _results(run_all(ray, run_cell, jobs, options), counts):
            records.extend(r.records)
            bar.advance(1, f"{r.done} runs done, {r.reused} reused")
        slots = max(1, min(int(ray.cluster_resources().get("CPU", 1) / options.cpus_per_run), n_cells))
    timings = _timings(time.perf_counter() - wall0, counts, slots)
    ordered = _grid_order(cfg, [ds.name for ds in datasets], records)
    return _write_results(cfg, out, ordered, timings, started, command, plots)


def _timings(wall: float, counts: dict[str, float], slots: int) -> StudyTimings:
    """A Ray run's timings; compute is summed over workers, so overhead is against the wall time of every slot."""
    return StudyTimings(
        wall_seconds=round(wall, 2),
        compute_seconds=round(counts["compute"], 2),
        overhead_fraction=round(max(0.0, 1 - counts["compute"] / (wall * slots)), 4) if wall else 0.0,
        originals_trained=int(counts["trained"]),
        runs_done=int(counts["done"]),
        runs_reused=int(counts["reused"]),
    )


def _results(texts: Iterator[str], counts: dict[str, float]) -> Iterator[_CellResult]:
    """Finished tasks' results as they come, counted into ``counts``."""
    for text in texts:
        r = _CellResult.model_validate_json(text)
        counts["trained"] += r.trained
        counts["done"] += r.done
        counts["reused"] += r.reused
        counts["compute"] += r.compute_seconds
        yield r


def _grid_order(cfg: StudyConfig, names: list[str], records: list[RunRecord]) -> list[RunRecord]:
    """Records in the order a local run collects them (cells finish in any order on a cluster)."""
    cells = [(d, f.name, s) for d in names for f in cfg.forget for s in cfg.seeds]
    rank = {cell: i for i, cell in enumerate(cells)}
    retrain_first = {m.name: (m.method != "retrain", i) for i, m in enumerate(cfg.methods)}
    return sorted(records, key=lambda r: (rank.get((r.dataset, r.forget, r.seed), 0), retrain_first[r.label]))


__all__ = ["run_cell", "run_study_on_ray"]
