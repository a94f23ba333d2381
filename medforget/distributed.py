"""One model on many GPUs: the process group ``torchrun`` starts, and how training joins it.

``torchrun --nproc-per-node N -m medforget <command> ...`` starts N processes. Rank 0 runs the
command exactly as a single process would (it alone reads requests, writes checkpoints, reports,
ledger entries and cache files, so the provenance is the same); every other rank waits for
training jobs (:mod:`medforget.launch`). Whenever rank 0 trains a model from scratch (``train``,
the retrain baselines of ``unlearn``/``tune``/``calibrate``, the shadow models of ``audit --deep``)
it broadcasts the job, and all ranks train it together with DistributedDataParallel: each global
batch of the recipe's ``batch_size`` is split evenly over the ranks (a distributed sampler over one
shared, seeded order), gradients are averaged, so a step sees the same images as in one process.

Backends: NCCL for CUDA tensors with Gloo for the control messages and CPU tensors when CUDA is
present, Gloo alone otherwise (``MEDFORGET_DIST_BACKEND`` overrides).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from pydantic import BaseModel
from torch import nn

from medforget.config import ReadOptions, RuntimeOptions, TrainConfig
from medforget.data import Dataset, DataSource, DataSpec, Split, current_reading

CONTROL_TIMEOUT = timedelta(days=30)
"""Workers wait for the next job while rank 0 unlearns, evaluates and writes: hours, in a long study."""


@dataclass
class Group:
    """This process's place in the group: its rank, the world size, its GPU, and the control channel."""

    rank: int
    world: int
    local_rank: int
    control: Any = None

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world


_GROUP: Group | None = None
_TOGETHER: ContextVar[bool] = ContextVar("medforget_ddp", default=False)


def launched_world() -> int:
    """The world size ``torchrun`` set for this process (1 when started plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init() -> Group | None:
    """Join the process group ``torchrun`` describes in the environment; None when not launched by it."""
    global _GROUP
    if launched_world() <= 1:
        return None
    rank, world, local = int(os.environ["RANK"]), launched_world(), int(os.environ.get("LOCAL_RANK", "0"))
    backend = os.environ.get("MEDFORGET_DIST_BACKEND")
    if backend is None:
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    _GROUP = Group(rank, world, local, control)
    return _GROUP


def shutdown() -> None:
    """Leave the process group."""
    global _GROUP
    if _GROUP is not None:
        dist.destroy_process_group()
        _GROUP = None


def group() -> Group | None:
    """The group this process belongs to, if it was launched by ``torchrun`` with more than one process."""
    return _GROUP


def send(message: str | None) -> None:
    """Rank 0: broadcast a job (JSON) to the other ranks, or None to tell them to stop."""
    assert _GROUP is not None and _GROUP.rank == 0
    dist.broadcast_object_list([message], src=0, group=_GROUP.control)


class TrainJob(BaseModel):
    """What every rank needs to train one model with rank 0: the data, the samples, the recipe and the runtime."""

    spec: DataSpec
    source: DataSource
    classes: list[str]
    reading: ReadOptions
    runtime: RuntimeOptions
    recipe: TrainConfig
    device: str
    sample_ids: list[str]
    labels: list[int]
    description: str


def announce(dataset: Dataset, cfg: TrainConfig, device: torch.device, split: Split, description: str) -> None:
    """Rank 0: tell the other ranks to train ``cfg`` on ``split`` of ``dataset`` with it, now."""
    from medforget import runtime

    assert dataset.source is not None
    job = TrainJob(
        spec=dataset.spec,
        source=dataset.source,
        classes=dataset.classes,
        reading=current_reading(),
        runtime=runtime.current(),
        recipe=cfg,
        device=device.type,
        sample_ids=split.sample_ids,
        labels=split.labels.tolist(),
        description=description,
    )
    send(job.model_dump_json())


def receive() -> str | None:
    """Other ranks: wait for rank 0's next job (None: stop)."""
    assert _GROUP is not None
    box: list[Any] = [None]
    dist.broadcast_object_list(box, src=0, group=_GROUP.control)
    return box[0]


@contextmanager
def together() -> Iterator[Group | None]:
    """Inside this block, :func:`medforget.engine.fit` trains with every rank (DistributedDataParallel)."""
    token = _TOGETHER.set(_GROUP is not None)
    try:
        yield _GROUP
    finally:
        _TOGETHER.reset(token)


def training_group() -> Group | None:
    """The group to train with, inside :func:`together`; None otherwise (train in this process alone)."""
    return _GROUP if _TOGETHER.get() else None


def local_device(device: torch.device) -> torch.device:
    """This rank's GPU for a CUDA device (``cuda:LOCAL_RANK``); CPU as is."""
    if device.type == "cuda" and _GROUP is not None:
        return torch.device("cuda", _GROUP.local_rank)
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel (broadcasts rank 0's weights and buffers, averages gradients)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


__all__ = [
    "Group",
    "TrainJob",
    "announce",
    "group",
    "init",
    "launched_world",
    "local_device",
    "receive",
    "send",
    "shutdown",
    "together",
    "training_group",
    "wrap",
]
