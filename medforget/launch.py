"""What ``python -m medforget`` runs under ``torchrun``: rank 0 the command, every other rank the training jobs.

See :mod:`medforget.distributed` for the division of work. A worker keeps the last dataset it
loaded (most commands train on one), rebuilds each job's samples from their IDs, and trains with
rank 0 until told to stop; it writes nothing and prints only warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from medforget import distributed, runtime
from medforget.data import Dataset, Split, concat_splits, load_from_spec, reading
from medforget.engine import build_model, fit

log = logging.getLogger(__name__)


def run(command: Callable[[], Any]) -> Any:
    """Run ``command`` (the CLI) in this process, or, under ``torchrun``, on rank 0 with the others serving it."""
    grp = distributed.init()
    if grp is None:
        return command()
    try:
        if grp.rank == 0:
            return command()
        logging.basicConfig(level=logging.WARNING)
        serve()
        return None
    finally:
        if grp.rank == 0:
            distributed.send(None)  # stop the workers, whatever happened here
        distributed.shutdown()


def job_split(dataset: Dataset, job: distributed.TrainJob) -> Split:
    """The job's samples, in the job's order, from this rank's copy of the dataset (runs of one split at a time)."""
    where = dataset.locate()
    parts: list[Split] = []
    run_split, rows = None, []
    for sid in job.sample_ids:
        split_name, row = where[sid]
        if split_name != run_split and rows:
            parts.append(dataset.splits[run_split].subset(rows))  # type: ignore[index]
            rows = []
        run_split = split_name
        rows.append(row)
    if rows:
        parts.append(dataset.splits[run_split].subset(rows))  # type: ignore[index]
    split = parts[0] if len(parts) == 1 else concat_splits("train", parts)
    split.labels = torch.tensor(job.labels, dtype=torch.long)
    return split


def serve() -> None:
    """Train every job rank 0 announces, together with it, until it says stop."""
    datasets: dict[str, Dataset] = {}
    while (message := distributed.receive()) is not None:
        job = distributed.TrainJob.model_validate_json(message)
        key = job.spec.model_dump_json() + job.source.model_dump_json()
        with reading(job.reading), runtime.use(job.runtime):
            if key not in datasets:
                datasets.clear()
                datasets[key] = load_from_spec(job.spec, job.source.data_root, job.source.manifest, None)
            dataset = datasets[key]
            if dataset.classes != job.classes:
                raise RuntimeError(f"classes {dataset.classes} here differ from rank 0's {job.classes}")
            device = distributed.local_device(torch.device(job.device))
            with distributed.together():
                model = build_model(job.recipe, dataset, device)
                fit(model, job_split(dataset, job), job.recipe, device, description=job.description)


__all__ = ["job_split", "run", "serve"]
