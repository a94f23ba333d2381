"""Training and inference: one loop shared by ``train``, the retrain baseline and the unlearning methods.

CPU is a first-class target (hospitals rarely have a spare GPU): images stay in memory as
uint8 (or on disk, read a batch at a time) and are normalised per batch, the model runs
``channels_last`` (about +40% on ResNet-18 here), and no autocast is used on CPU (bf16 is 10-50x
slower on CPUs without native support). Given a seed, a CPU run is bit-for-bit repeatable. On
CUDA the same loop runs in mixed precision with a gradient scaler where needed
(:mod:`medforget.runtime`), and under ``torchrun`` every rank trains the model together
(:mod:`medforget.distributed`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medforget import distributed, progress
from medforget.config import TrainConfig
from medforget.data import Dataset, Split, batches
from medforget.errors import MedforgetError
from medforget.models import create_model
from medforget.runtime import Runtime, RuntimeRecord


class ComputeClock:
    """Seconds this process spent in forward/backward passes and optimizer steps.

    Studies compare it with their wall time to show how much goes to overhead (data handling,
    checkpoints, reports, plots). On CUDA the clock is synchronised so asynchronous kernels are
    counted where they run.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    @contextmanager
    def running(self, device: torch.device | None = None) -> Iterator[None]:
        if self._depth:  # nested (predict inside a training loop): the outer block already counts
            yield
            return
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize(device)
            self.seconds += time.perf_counter() - start
            self._depth -= 1


compute_clock = ComputeClock()


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if device == "auto":
        return distributed.local_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise MedforgetError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MedforgetError("--device cuda requested but no CUDA device is available")
    return distributed.local_device(torch.device(device))


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch globally (initialisation, dropout) and return a generator for batch order."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def prepare(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to ``device`` in the fastest memory format (channels_last for convolutions)."""
    return model.to(device=device, memory_format=torch.channels_last)


def make_optimizer(
    params: Iterator[nn.Parameter] | list[nn.Parameter], name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Adam or SGD (with momentum) over ``params``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise MedforgetError(f"unknown optimizer {name!r}; use adam or sgd")


def make_scheduler(
    opt: torch.optim.Optimizer, schedule: str, total_steps: int, warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedules, so short unlearning runs of one or two epochs still anneal.

    ``warmup_steps`` ramps the rate up linearly over the first steps (step s at (s + 1) / warmup_steps of it).
    """
    total_steps = max(total_steps, 1)
    if schedule == "cosine":
        shape = lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total_steps, 1)))  # noqa: E731
    elif schedule == "multistep":
        shape = lambda s: 0.1 ** ((s >= 0.5 * total_steps) + (s >= 0.75 * total_steps))  # noqa: E731
    elif schedule == "constant":
        shape = lambda s: 1.0  # noqa: E731
    else:
        raise MedforgetError(f"unknown schedule {schedule!r}; use cosine, multistep or constant")
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: shape(s) * min(1.0, (s + 1) / max(warmup_steps, 1)))


PREDICT_BATCH = {"cpu": 128, "cuda": 512}
"""Images per forward pass in :func:`predict`. On CPU, ResNet-18 at 28 px evaluates faster in batches of 128 than
of 512, with logits identical on this machine (``benchmarks/eval_throughput.py``: PneumoniaMNIST's test set in
2.75 s against 3.28 s on 2 cores; BreastMNIST's 156 test images take the same time either way)."""


@torch.no_grad()
def predict(model: nn.Module, split: Split, device: torch.device, batch_size: int | None = None) -> torch.Tensor:
    """Logits for every row of ``split`` (on CPU, in row order), in eval mode (``batch_size``: PREDICT_BATCH's)."""
    batch_size = batch_size or PREDICT_BATCH.get(device.type, 512)
    was_training = model.training
    model.eval()
    images = split.images.to(device)
    rt = Runtime.for_device(device)
    with compute_clock.running(device), rt.autocast():
        labels = split.labels.to(device)
        out = [model(x).float().cpu() for x, _, _ in batches(images, labels, batch_size, channels_last=True)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


@dataclass
class EpochLog:
    epoch: int
    loss: float
    train_acc: float
    val_acc: float | None
    val_loss: float | None
    seen: int = 0


@dataclass
class FitResult:
    """What a training run did: per-epoch history, the chosen epoch and wall time."""

    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    images_seen: int = 0
    runtime: RuntimeRecord | None = None

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.seconds if self.seconds else 0.0


StepFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``step(model, x, y, rows) -> (loss, logits)``: one batch's objective; logits feed the progress bar."""


def cross_entropy_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The default per-batch objective: plain cross-entropy on the given labels."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


def fit(
    model: nn.Module,
    train: Split,
    cfg: TrainConfig,
    device: torch.device,
    *,
    val: Split | None = None,
    step: StepFn = cross_entropy_step,
    description: str = "train",
) -> FitResult:
    """Train ``model`` in place on ``train`` for ``cfg.epochs``; keep the best-by-validation weights.

    Args:
        model: the network, already on ``device``.
        train: the samples to train on.
        cfg: the recipe (epochs, batch size, optimizer, schedule, seed).
        device: where to train.
        val: if given, evaluated after every epoch; the best epoch's weights are kept.
        step: computes one batch's loss (unlearning objectives replace plain cross-entropy).
        description: the progress task's name.

    Returns:
        The per-epoch history, the chosen epoch, the wall time and how the device was used.
    """
    # size: one loop over epochs with validation and best-epoch selection; the set-up is the runtime's and DDP's.
    gen = seed_everything(cfg.seed)
    model.train()
    grp = distributed.training_group()
    world = grp.world if grp is not None else 1
    if cfg.batch_size % world:
        raise MedforgetError(f"--batch-size {cfg.batch_size} must be a multiple of the {world} processes")
    rt = Runtime.for_device(device, world)
    steps_per_epoch = math.ceil((len(train) + (-len(train)) % world) / cfg.batch_size)
    opt = make_optimizer(
        [p for p in model.parameters() if p.requires_grad], cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay
    )
    net = rt.compiled(distributed.wrap(model, device) if grp is not None else model)
    sched = make_scheduler(opt, cfg.schedule, cfg.epochs * steps_per_epoch)
    loop = _Loop(net, step, opt, sched, device, rt, rt.scaler())
    images, targets = train.images.to(device), train.labels.to(device)
    result = FitResult(runtime=rt.record())
    best = _Best()
    start = time.perf_counter()
    with rt.determinism(), progress.track(description, cfg.epochs * steps_per_epoch) as task:
        for epoch in range(1, cfg.epochs + 1):
            order = batches(images, targets, cfg.batch_size, True, gen, True, grp.shard if grp else None)
            log = loop.epoch(epoch, order, task)
            result.images_seen += log.seen * world
            if val is not None and len(val):
                logits = predict(model, val, device)
                log.val_loss = float(F.cross_entropy(logits, val.labels))
                log.val_acc = float((logits.argmax(1) == val.labels).float().mean())
                best.offer(model, epoch, (log.val_acc, -log.val_loss))
            result.history.append(log)
            shown = f"  val acc {log.val_acc:.3f}" if log.val_acc is not None else ""
            task.note(f"loss {log.loss:.3f}  acc {log.train_acc:.3f}{shown}")
    result.best_epoch = best.restore(model) or cfg.epochs
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


@dataclass
class _Loop:
    """One training loop's model, objective, optimizer and schedule."""

    model: nn.Module
    step: StepFn
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    rt: Runtime
    scaler: torch.amp.GradScaler

    def epoch(
        self, epoch: int, order: Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], task: Any
    ) -> EpochLog:
        total_loss, correct, seen = 0.0, 0, 0
        for x, y, rows in order:
            with compute_clock.running(self.device):
                self.opt.zero_grad(set_to_none=True)
                with self.rt.autocast():
                    loss, logits = self.step(self.model, x, y, rows)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
                self.sched.step()
            total_loss += float(loss.detach()) * len(y)
            correct += int((logits.detach().argmax(1) == y).sum())
            seen += len(y)
            task.advance()
        return EpochLog(epoch, total_loss / max(seen, 1), correct / max(seen, 1), None, None, seen)


@dataclass
class _Best:
    """The best epoch so far by (validation accuracy, -validation loss), and its weights."""

    key: tuple[float, float] | None = None
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None

    def offer(self, model: nn.Module, epoch: int, key: tuple[float, float]) -> None:
        if self.key is None or key > self.key:
            self.key, self.epoch, self.state = key, epoch, copy.deepcopy(model.state_dict())

    def restore(self, model: nn.Module) -> int:
        """Load the best weights into ``model``; returns the best epoch (0 if none was offered)."""
        if self.state is not None:
            model.load_state_dict(self.state)
        return self.epoch


def build_model(cfg: TrainConfig, dataset: Dataset, device: torch.device) -> nn.Module:
    """A freshly initialised model for ``dataset`` (seeded by ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    model = create_model(
        cfg.arch, num_classes=len(dataset.classes), in_channels=dataset.n_channels, image_size=dataset.spec.size
    )
    return prepare(model, device)


def train_model(
    dataset: Dataset,
    cfg: TrainConfig,
    device: torch.device,
    train_split: Split | None = None,
    description: str = "train",
) -> tuple[nn.Module, FitResult]:
    """Train from scratch on ``train_split`` (default: the dataset's training split), selecting on val.

    Under ``torchrun`` (rank 0) the job is sent to every rank first, and all of them train it together.

    Args:
        dataset: the data (its val split selects the best epoch).
        cfg: the recipe.
        device: where to train.
        train_split: the samples to train on (retained samples, a shadow's half...).
        description: the progress task's name.

    Returns:
        The trained model (best epoch) and what the run did.
    """
    split = train_split if train_split is not None else dataset.train
    grp = distributed.group()
    if grp is not None and grp.rank == 0 and dataset.source is not None:
        distributed.announce(dataset, cfg, device, split, description)
        with distributed.together():
            model = build_model(cfg, dataset, device)
            return model, fit(model, split, cfg, device, val=dataset.val, description=description)
    model = build_model(cfg, dataset, device)
    return model, fit(model, split, cfg, device, val=dataset.val, description=description)
