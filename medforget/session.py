"""Opening a deletion request against a model: the one preamble every command shares.

Load and verify the checkpoint, rebuild the data it was trained on and check its fingerprint,
resolve the request to training rows (excluding earlier deletions), and cut the forget and
retain sets. ``unlearn``, ``tune``, ``audit`` and ``request check`` all start here, so a
request means the same rows to every one of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from medforget import outputs as recorded
from medforget.baseline import RetainSet
from medforget.checkpoint import LoadedCheckpoint, check_dataset, load_checkpoint
from medforget.data import DataPaths, Dataset, Split, load_from_spec
from medforget.engine import resolve_device
from medforget.methods import UnlearnTask
from medforget.request import DeletionRequest, ResolvedRequest, resolve

log = logging.getLogger(__name__)


@dataclass
class Task:
    """A request opened against a model: everything a method, a verification or an audit works on."""

    checkpoint: LoadedCheckpoint
    dataset: Dataset
    resolved: ResolvedRequest
    forget: Split
    retain: Split
    device: torch.device
    key: bytes | None
    data: DataPaths
    _target: float | None = field(default=None, repr=False)

    def eval_sets(self) -> dict[str, Split]:
        """The sets every model is evaluated on: retained, forgotten, test, and validation (for refits)."""
        return {"retain": self.retain, "forget": self.forget, "test": self.dataset.test, "val": self.dataset.val}

    def target_sensitivity(self) -> float:
        """The original model's validation sensitivity: the operating point every model is set to (1 without
        disease cases in validation, which nothing can then guarantee)."""
        if self._target is None:
            found = self.original_val_sensitivity()
            self._target = 1.0 if found is None else found
        return self._target

    def original_val_sensitivity(self) -> float | None:
        """The original's validation sensitivity at its argmax (None without disease cases in validation)."""
        from medforget.evaluation import val_sensitivity

        logits = self.original_logits("val")
        model = self.original() if logits is None else logits
        return val_sensitivity(model, self.dataset.val, self.dataset.positive, self.device)

    def original_logits(self, name: str) -> torch.Tensor | None:
        """The original's logits on an evaluation set (``retain``, ``forget``, ``test``, ``val``) as its checkpoint
        recorded them, or None if it did not record them all (:mod:`medforget.outputs`)."""
        ck, sets = self.checkpoint, self.eval_sets()
        rows = {"retain": self.resolved.retain_rows, "forget": self.resolved.forget_rows}.get(name)
        split = "train" if name in ("retain", "forget") else name
        return recorded.lookup(ck.outputs, split, rows, sets[name], ck.meta.num_classes)

    def recorded_eval_logits(self) -> dict[str, torch.Tensor] | None:
        """The original's recorded logits on every evaluation set, or None unless all are recorded."""
        found = {name: self.original_logits(name) for name in self.eval_sets()}
        return None if any(v is None for v in found.values()) else found  # type: ignore[return-value]

    def retain_set(self) -> RetainSet:
        """The retained samples with their rows and data location, as retrains in other processes need them."""
        return RetainSet(self.retain, self.resolved.retain_rows, self.data)

    def original(self) -> nn.Module:
        """A fresh copy of the model before unlearning, on the task's device."""
        return self.checkpoint.build_model(self.device)

    def method_task(self, seed: int, calibrated_auc: float | None = None) -> UnlearnTask:
        """What a method gets: a private copy of the original, the sets, the seed, the original's logits on
        the forget and validation sets when its checkpoint recorded them, and a calibrated stopping target."""
        known = {name: self.original_logits(name) for name in ("forget", "val")}
        return UnlearnTask(
            self.original(),
            self.forget,
            self.retain,
            self.dataset,
            self.checkpoint.meta.train_config,
            self.device,
            seed,
            {k: v for k, v in known.items() if v is not None},
            calibrated_auc,
        )


def open_task(
    checkpoint: str | Path | LoadedCheckpoint,
    request: DeletionRequest,
    data: DataPaths | None = None,
    device: str = "auto",
    key: bytes | None = None,
    allow_class_removal: bool = False,
    show_ids: bool = False,
) -> Task:
    """Open ``request`` against ``checkpoint``; every refusal (bad file, wrong data, unknown IDs) raises here.

    Args:
        checkpoint: a checkpoint path, or one already loaded and verified.
        request: the deletion request.
        data: where the data (``--data-root``) and the manifest the model was trained with are.
        device: ``auto``, ``cpu`` or ``cuda``.
        key: the hospital's secret, for keyed forgotten records.
        allow_class_removal: allow a request that removes every training sample of a class.
        show_ids: name offending IDs in refusals (by default only their positions in the request).

    Returns:
        The task: the verified checkpoint, its data, the resolved request and the forget/retain sets.
    """
    ckpt = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint, key=key)
    data = data or DataPaths()
    dataset = load_from_spec(ckpt.meta.dataset.spec, data.data_root, data.manifest)
    check_dataset(ckpt, dataset)
    resolved = resolve(request, dataset, ckpt.meta.forgotten, key, allow_class_removal, show_ids)
    for warning in resolved.warnings:
        log.warning(warning)
    return Task(
        checkpoint=ckpt,
        dataset=dataset,
        resolved=resolved,
        forget=dataset.train.subset(resolved.forget_rows),
        retain=dataset.train.subset(resolved.retain_rows),
        device=resolve_device(device),
        key=key,
        data=data,
    )


__all__ = ["Task", "open_task"]
