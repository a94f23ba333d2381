"""The reference an unlearned model is judged against: models retrained from scratch without the forget set.

Retraining is exact unlearning, but it is not one model: two retrains with different seeds
disagree on a small medical dataset by as much as any tolerance a clinician would set. So the
baseline is a *distribution*: ``K`` retrains with the recorded recipe on the retained samples,
each from its own initialisation and data order. Their seeds are derived from the recipe's
seed (``seed + 1``, ``seed + 2``, ...), so the original's own seed is never reused: a retrain
that shared it would start from the original's initial weights and batch order and look
closer to the original than an independent retrain does.

Each retrain is cached by recipe, seed, data and retained samples (:mod:`medforget.cache`), so
a second verification of the same request, or another method on it, trains nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medforget import progress
from medforget.cache import ModelStore, retrain_key
from medforget.data import DataPaths

if TYPE_CHECKING:
    import torch
    from torch import nn

    from medforget.config import TrainConfig
    from medforget.data import Dataset, Split

log = logging.getLogger(__name__)

STORE = ModelStore("baselines")


@dataclass
class Retrain:
    """One model retrained without the forget set."""

    seed: int
    model: nn.Module
    seconds: float | None  # training wall time when it was first trained (None if unknown)
    cached: bool  # reused from the cache rather than trained now
    sha256: str


def retrain_seeds(recipe_seed: int, k: int) -> list[int]:
    """Seeds of ``k`` retrains: ``recipe_seed + 1 ... recipe_seed + k`` (never the original's own seed)."""
    return [recipe_seed + 1 + i for i in range(k)]


def train_or_load(dataset: Dataset, recipe: TrainConfig, retain: Split, seed: int, device: torch.device) -> Retrain:
    """The retrain with ``seed`` on ``retain``: from the cache, or trained now and stored.

    Args:
        dataset: the dataset the original was trained on (its val split selects the best epoch).
        recipe: the original's recorded training recipe; its seed is replaced by ``seed``.
        retain: the training samples that remain after the deletion.
        seed: this retrain's seed.
        device: where to train.

    Returns:
        The retrain, with its training time and whether it came from the cache.
    """
    from medforget.checkpoint import CheckpointMeta
    from medforget.engine import train_model

    key = retrain_key(recipe, dataset.fingerprint(), retain.sample_ids, seed)
    cached = STORE.load(key)
    if cached is not None:
        log.debug("retrain seed %d: reusing %s", seed, STORE.path(key))
        seconds = cached.meta.metrics.get("train_seconds")
        return Retrain(seed, cached.build_model(device), seconds, True, cached.sha256)
    seeded = recipe.model_copy(update={"seed": seed})
    log.info("retrain seed %d: training %s from scratch on %d retained samples", seed, recipe.arch, len(retain))
    start = time.perf_counter()
    model, run = train_model(dataset, seeded, device, train_split=retain)
    seconds = time.perf_counter() - start
    metrics = {"train_seconds": round(seconds, 3)}
    meta = CheckpointMeta.for_dataset(dataset, seeded, metrics=metrics, runtime=run.runtime)
    sha = STORE.save(key, model, meta)
    return Retrain(seed, model, seconds, False, sha)


def _cached(dataset: Dataset, recipe: TrainConfig, retain: Split, seed: int) -> bool:
    return STORE.path(retrain_key(recipe, dataset.fingerprint(), retain.sample_ids, seed)).exists()


def train_job(job: dict[str, Any]) -> None:
    """Train one retrain described by ``job`` into the cache (what a worker process runs)."""
    import torch

    from medforget.config import TrainConfig
    from medforget.data import DataSpec, load_from_spec

    torch.set_num_threads(job["threads"])
    dataset = load_from_spec(DataSpec.model_validate_json(job["spec"]), job["data_root"], job["manifest"])
    recipe = TrainConfig.model_validate_json(job["recipe"])
    train_or_load(dataset, recipe, dataset.train.subset(job["rows"]), job["seed"], torch.device("cpu"))


def _train_in_parallel(jobs: list[dict[str, Any]], workers: int) -> None:
    """One single-threaded process per core: on a small CPU machine this beats one process using every core.

    Workers are fresh interpreters (``python -m medforget.baseline``), not forks: a fork of a process whose
    OpenMP threads are running can hang, and spawned multiprocessing would re-run the caller's script.
    """
    import subprocess
    import sys

    log.info("training %d retrains in %d parallel processes", len(jobs), workers)
    env = {**os.environ, "OMP_NUM_THREADS": str(jobs[0]["threads"])}
    pending, running = list(jobs), []
    with progress.track("retrains", len(jobs)) as bar:
        while pending or running:
            while pending and len(running) < workers:
                proc = subprocess.Popen([sys.executable, "-m", "medforget.baseline"], stdin=subprocess.PIPE, env=env)
                proc.stdin.write(json.dumps(pending.pop(0)).encode())  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
                running.append(proc)
            done = running.pop(0)
            if done.wait() != 0:
                for proc in running:
                    proc.kill()
                raise RuntimeError(f"a retrain worker failed (exit {done.returncode}); see its message above")
            bar.advance(1)


def retrain_distribution(
    dataset: Dataset,
    recipe: TrainConfig,
    retain: RetainSet,
    seeds: list[int],
    device: torch.device,
    workers: int = 0,
) -> list[Retrain]:
    """The retrains with ``seeds``: those not in the cache are trained (in parallel processes on a CPU).

    Args:
        dataset: the data the original was trained on.
        recipe: the original's recorded recipe.
        retain: the retained samples, and where their data lives (so worker processes can load it).
        seeds: one retrain per seed (see :func:`retrain_seeds`).
        device: where to train; on CUDA the retrains are trained one after the other.
        workers: parallel processes on CPU (0: one per core, up to the number missing; 1: in this process).

    Returns:
        One retrain per seed, in order.
    """
    from medforget import distributed

    missing = [s for s in seeds if not _cached(dataset, recipe, retain.split, s)]
    n = min(len(missing), workers or os.cpu_count() or 1)
    if distributed.group() is not None:
        n = 1  # under torchrun every rank trains each retrain together, one after the other
    if device.type == "cpu" and n > 1:
        threads = max(1, (os.cpu_count() or 1) // n)
        common = {
            "spec": dataset.spec.model_dump_json(),
            **retain.data.model_dump(mode="json"),  # data_root, manifest
            "threads": threads,
            "recipe": recipe.model_dump_json(),
            "rows": retain.rows,
        }
        _train_in_parallel([{**common, "seed": s} for s in missing], n)
    found = [train_or_load(dataset, recipe, retain.split, s, device) for s in seeds]
    for r in found:  # trained by a worker process just now, read back from the cache
        r.cached = r.seed not in missing
    return found


@dataclass
class RetainSet:
    """The retained samples: the split itself, its rows in the training split, and where the data lives."""

    split: Split
    rows: list[int]
    data: DataPaths


__all__ = ["RetainSet", "Retrain", "retrain_distribution", "retrain_seeds", "train_or_load"]


if __name__ == "__main__":  # a retrain worker: one job as JSON on stdin
    import sys

    train_job(json.loads(sys.stdin.read()))
