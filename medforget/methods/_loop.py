"""Training loops shared by the unlearning methods.

Most approximate methods optimise an objective on forget samples together with retain
samples. Iterating the whole retain set every epoch would cost as much as retraining,
which defeats the purpose; instead each step pairs a forget batch with ``retain_ratio``
times as many retain samples, drawn afresh each epoch, in one forward pass (so batch
norm sees the mixture, as in random-labelling on the union of both sets).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.data import Split, to_float
from medforget.engine import compute_clock, make_optimizer, make_scheduler, progress_bar, seed_everything
from medforget.methods import MethodParams, UnlearnTask

Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``objective(logits_forget, y_forget, rows_forget, logits_retain, y_retain) -> loss``."""


class OptimParams(MethodParams):
    """Optimisation settings every training-based method shares (consistent names across methods)."""

    epochs: int = Field(2, ge=1, description="Passes over the forget set (or retain set for retain-only methods)")
    lr: float = Field(1e-4, gt=0, description="Learning rate")
    optimizer: Literal["adam", "sgd"] = Field("adam")
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["cosine", "constant", "multistep"] = Field("constant")
    batch_size: int = Field(64, ge=2, description="Samples per step (forget + retain)")


class PairedParams(OptimParams):
    epochs: int = Field(5, ge=1, description="At most this many passes over the forget set")
    lr: float = Field(5e-5, gt=0, description="Learning rate")
    retain_ratio: float = Field(
        2.0, gt=0, description="Retain samples per forget sample in each step (keeps accuracy on retained data)"
    )
    early_stop: bool = Field(
        True,
        description="Stop once forget accuracy falls to the original model's held-out accuracy for the same class "
        "mix: forget samples then look like unseen ones, as after retraining",
    )
    check_every: int = Field(
        3,
        ge=1,
        description="Steps between early-stop tests: a large forget set is forgotten (and overshoots) well within "
        "one epoch",
    )
    check_samples: int = Field(
        256, ge=16, description="Forget samples each early-stop test scores (a fixed random subset if there are more)"
    )


def unseen_accuracy(task: UnlearnTask) -> float:
    """Accuracy the original model reaches on *unseen* samples with the forget set's class mix.

    A model retrained without the forget set treats those samples as unseen, so its forget
    accuracy is close to this (measured on the validation split, which no model trained on).
    Per-class validation accuracy is weighted by the forget set's class counts, so a
    disease-heavy request gets a disease-heavy target.
    """
    from medforget.engine import predict

    val = task.dataset.val
    correct = (predict(task.original, val, task.device).argmax(1) == val.labels).float()
    overall = float(correct.mean())
    counts = torch.bincount(task.forget.labels, minlength=task.num_classes)
    acc = [
        float(correct[val.labels == c].mean()) if (val.labels == c).any() else overall for c in range(task.num_classes)
    ]
    return float(sum(a * int(n) for a, n in zip(acc, counts, strict=True)) / max(int(counts.sum()), 1))


def forget_accuracy(model: nn.Module, task: UnlearnTask, split: Split | None = None) -> float:
    """Accuracy on the forget set (or on ``split``, a subset of it), in eval mode."""
    from medforget.engine import predict

    split = task.forget if split is None else split
    return float((predict(model, split, task.device).argmax(1) == split.labels).float().mean())


def random_wrong_labels(labels: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """A label different from the true one for every sample, uniform over the wrong classes.

    Uniform over *all* classes (as in the reference implementation) gives the true label
    back with probability 1/K: half the "random" labels of a binary task would be correct.
    """
    shift = torch.randint(1, num_classes, labels.shape, generator=gen)
    return (labels + shift) % num_classes


def uniform_target_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to the uniform distribution, per sample: minimal at maximum predictive entropy."""
    return -F.log_softmax(logits, dim=1).mean(dim=1)


def forget_retain_loop(
    task: UnlearnTask,
    p: PairedParams,
    objective: Objective,
    forget_labels: torch.Tensor | None = None,
    params: list[nn.Parameter] | None = None,
    after_step: Callable[[], None] | None = None,
    description: str = "unlearn",
) -> nn.Module:
    """Optimise ``objective`` over forget batches paired with fresh retain samples, for ``p.epochs``."""
    model = task.model
    dev = task.device
    gen = seed_everything(task.seed)
    f_img, r_img = task.forget.images.to(dev), task.retain.images.to(dev)
    f_lab = (task.forget.labels if forget_labels is None else forget_labels).to(dev)
    r_lab = task.retain.labels.to(dev)
    n_f, n_r = len(task.forget), len(task.retain)
    bf = max(1, round(p.batch_size / (1 + p.retain_ratio)))
    br = min(p.batch_size - bf, n_r)
    steps = math.ceil(n_f / bf)
    opt = make_optimizer(
        params if params is not None else list(model.parameters()), p.optimizer, p.lr, p.momentum, p.weight_decay
    )
    sched = make_scheduler(opt, p.schedule, p.epochs * steps)
    fmt = torch.channels_last if dev.type == "cpu" else torch.contiguous_format
    target = unseen_accuracy(task) if p.early_stop else None
    probe = task.forget  # what each early-stop test scores: all forget samples, or a fixed random subset
    if n_f > p.check_samples:
        probe = task.forget.subset(
            torch.randperm(n_f, generator=torch.Generator().manual_seed(task.seed))[: p.check_samples]
        )
    step = 0
    model.train()
    with progress_bar(task.show_progress) as bar:
        job = bar.add_task(description, total=p.epochs * steps, info="")
        for _ in range(p.epochs):
            f_order = torch.randperm(n_f, generator=gen).to(dev)
            r_order = torch.randperm(n_r, generator=gen).to(dev)
            for s in range(steps):
                fr = f_order[s * bf : (s + 1) * bf]
                rr = r_order.roll(-s * br)[:br] if br else r_order[:0]
                x = to_float(torch.cat([f_img[fr], r_img[rr]])).contiguous(memory_format=fmt)
                with compute_clock.running(dev):
                    logits = model(x)
                    loss = objective(logits[: len(fr)], f_lab[fr], fr, logits[len(fr) :], r_lab[rr])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    if after_step is not None:
                        after_step()
                bar.update(job, advance=1, info=f"loss {loss.item():.3f}")
                step += 1
                if target is not None and step % p.check_every == 0:
                    acc = forget_accuracy(model, task, probe)
                    model.train()
                    if acc <= target:
                        bar.update(job, info=f"forget acc {acc:.3f} <= unseen {target:.3f}: stop")
                        return model.eval()
    return model.eval()


def retain_cfg(task: UnlearnTask, p: OptimParams):
    """A TrainConfig for retain-only fine-tuning, seeded by the task."""
    return task.train_config.model_copy(
        update={
            "epochs": p.epochs,
            "lr": p.lr,
            "optimizer": p.optimizer,
            "momentum": p.momentum,
            "weight_decay": p.weight_decay,
            "schedule": p.schedule,
            "batch_size": p.batch_size,
            "seed": task.seed,
        }
    )
