"""``medforget train``: train a model, then write a checkpoint that records exactly what it was trained on.

:func:`fit_original` trains and evaluates (computes, writes nothing); :func:`write_trained` writes the
checkpoint atomically and then, with a ledger, records it; :func:`train` does both after checking,
before any training, that the output can be written and the ledger appended to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel
from torch import nn

from medforget import outputs as recorded
from medforget.checkpoint import CheckpointMeta, checkpoint_bytes
from medforget.config import TrainConfig
from medforget.data import Dataset
from medforget.engine import FitResult, resolve_device, train_model
from medforget.evaluation import SetMetrics, set_metrics
from medforget.fileio import check_outputs, fault_point, interrupts_deferred, staged

log = logging.getLogger(__name__)


class TrainSummary(BaseModel):
    """What ``medforget train`` prints: where the model went and how good it is."""

    checkpoint: str
    sha256: str
    dataset: str
    arch: str
    epochs: int
    best_epoch: int
    seconds: float
    images_per_second: float
    val: SetMetrics
    test: SetMetrics


@dataclass
class Trained:
    """A freshly trained model with its record and held-out results (not yet written)."""

    model: nn.Module
    meta: CheckpointMeta
    fit: FitResult
    val: SetMetrics
    test: SetMetrics
    outputs: dict[str, torch.Tensor]


def fit_original(dataset: Dataset, cfg: TrainConfig, device: str = "auto") -> Trained:
    """Train ``cfg.arch`` on ``dataset``'s training split, keeping the best epoch on val; evaluate val and test.

    Args:
        dataset: the data (its training split is trained on, val selects the epoch).
        cfg: the recipe.
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        The model, its checkpoint record, its validation and test results, and its logits on every split
        (recorded in the checkpoint for later requests: :mod:`medforget.outputs`).
    """
    dev = resolve_device(device)
    log.info(
        "training %s on %s (%d train / %d val) for %d epochs on %s",
        cfg.arch,
        dataset.name,
        len(dataset.train),
        len(dataset.val),
        cfg.epochs,
        dev,
    )
    model, result = train_model(dataset, cfg, dev)
    logits = recorded.record(model, dataset, dev)
    val = set_metrics(logits["val"], dataset.val.labels, dataset.classes, dataset.positive)
    test = set_metrics(logits["test"], dataset.test.labels, dataset.classes, dataset.positive)
    metrics = {"val_accuracy": val.accuracy or 0.0, "test_accuracy": test.accuracy or 0.0}
    if test.fnr is not None:
        metrics["test_fnr"] = test.fnr
    meta = CheckpointMeta.for_dataset(dataset, cfg, metrics=metrics, runtime=result.runtime)
    return Trained(model, meta, result, val, test, logits)


def write_trained(trained: Trained, out: Path, force: bool, key: bytes | None, ledger: Path | None) -> TrainSummary:
    """Write the checkpoint (complete and in place first), then append its ``train`` entry to the ledger."""
    import hashlib

    data = checkpoint_bytes(trained.model, trained.meta, key, trained.outputs)
    sha = hashlib.sha256(data).hexdigest()
    with staged({out: data}, force) as ready, interrupts_deferred():  # the model, then its record, together
        ready.publish()
        fault_point("outputs-in-place")
        if ledger is not None:
            from medforget import ledger as ledger_mod

            content = ledger_mod.EntryContent(
                entry_type="train", params=trained.meta.train_config.model_dump(), output_sha256=sha
            )
            entry = ledger_mod.append(ledger, key=key, content=content)
            log.info("ledger: appended entry %d to %s", entry.seq, ledger)
    cfg = trained.meta.train_config
    return TrainSummary(
        checkpoint=str(out),
        sha256=sha,
        dataset=trained.meta.dataset.spec.name,
        arch=cfg.arch,
        epochs=cfg.epochs,
        best_epoch=trained.fit.best_epoch,
        seconds=round(trained.fit.seconds, 2),
        images_per_second=round(trained.fit.images_per_second, 1),
        val=trained.val,
        test=trained.test,
    )


def train(
    dataset: Dataset,
    cfg: TrainConfig,
    out: str | Path,
    device: str = "auto",
    force: bool = False,
    key: bytes | None = None,
    ledger: str | Path | None = None,
) -> TrainSummary:
    """Train and write a checkpoint; the output path and ledger are checked before training starts.

    Returns:
        Where the model went, its best epoch, speed, and validation and test results.
    """
    from medforget import ledger as ledger_mod

    out = Path(out)
    ledger = Path(ledger) if ledger is not None else None
    inputs: dict[str, Path | None] = {"the ledger": ledger}
    if ledger is not None:
        inputs["the ledger's lock file"] = ledger_mod.lock_path(ledger)
        ledger_mod.check_appendable(ledger, key)
    check_outputs({"--out": out}, inputs, force)
    return write_trained(fit_original(dataset, cfg, device), out, force, key, ledger)


__all__ = ["TrainSummary", "Trained", "fit_original", "train", "write_trained"]
