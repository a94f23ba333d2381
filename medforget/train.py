"""``medforget train``: train a model and write a checkpoint that records what it was trained on."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from medforget.checkpoint import CheckpointMeta, save_checkpoint
from medforget.data import Dataset
from medforget.engine import TrainConfig, predict, resolve_device, stderr, train_model
from medforget.fileio import check_writable
from medforget.metrics import SetMetrics, set_metrics


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


def train(
    dataset: Dataset,
    cfg: TrainConfig,
    out: str | Path,
    device: str = "auto",
    force: bool = False,
    show_progress: bool = True,
    key: bytes | None = None,
    ledger: str | Path | None = None,
) -> TrainSummary:
    """Train ``cfg.arch`` on ``dataset``'s training split, pick the best epoch on val, save to ``out``.

    The output path is checked before training so a bad path fails in a second, not after
    an hour; the checkpoint is written atomically at the end.
    """
    out = Path(out)
    check_writable(out, force)
    if ledger is not None:
        from medforget.unlearn import check_ledger

        check_ledger(ledger, key)
    dev = resolve_device(device)
    stderr.log(
        f"training {cfg.arch} on {dataset.name} ({len(dataset.train)} train / {len(dataset.val)} val) "
        f"for {cfg.epochs} epochs on {dev}"
    )
    model, result = train_model(dataset, cfg, dev, show_progress=show_progress)
    val = set_metrics(predict(model, dataset.val, dev), dataset.val.labels, dataset.classes, dataset.positive)
    test = set_metrics(predict(model, dataset.test, dev), dataset.test.labels, dataset.classes, dataset.positive)
    metrics = {"val_accuracy": val.accuracy or 0.0, "test_accuracy": test.accuracy or 0.0}
    if test.fnr is not None:
        metrics["test_fnr"] = test.fnr
    meta = CheckpointMeta.for_dataset(dataset, cfg, metrics=metrics)
    sha = save_checkpoint(out, model, meta, force=force, key=key)
    if ledger is not None:
        from medforget import ledger as ledger_mod

        entry = ledger_mod.append(ledger, key=key, entry_type="train", params=cfg.model_dump(), output_sha256=sha)
        stderr.print(f"ledger: appended entry {entry.seq} to {ledger}")
    return TrainSummary(
        checkpoint=str(out),
        sha256=sha,
        dataset=dataset.name,
        arch=cfg.arch,
        epochs=cfg.epochs,
        best_epoch=result.best_epoch,
        seconds=round(result.seconds, 2),
        images_per_second=round(result.images_per_second, 1),
        val=val,
        test=test,
    )
