"""Training loops shared by the unlearning methods.

Most approximate methods optimise an objective on forget samples together with retain samples.
Iterating the whole retain set every epoch costs as much as retraining; by default (``retain_per_epoch
= "paired"``) each step pairs a forget batch with ``retain_ratio`` times as many retain samples, drawn
afresh each epoch, in one forward pass (so batch norm sees the mixture). The published recipes instead
sweep the whole retain set every epoch (``"all"``), which the ``published`` presets select.

Every loop stops by :class:`medforget.methods._stop.StopRule` (when the forget samples look unseen, or
after every epoch) and leaves the rule's record, :class:`~medforget.methods._stop.Stopping`, on the task.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget import progress
from medforget.data import to_float
from medforget.engine import compute_clock, make_optimizer, make_scheduler, seed_everything
from medforget.methods._registry import MethodParams, UnlearnTask
from medforget.methods._stop import StopParams, StopRule

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
    warmup_steps: int = Field(
        0, ge=0, description="Steps over which the learning rate ramps up linearly from a fraction of it (0: none)"
    )
    batch_size: int = Field(64, ge=2, description="Samples per step (forget + retain)")


class PairedParams(OptimParams, StopParams):
    epochs: int = Field(5, ge=1, description="At most this many passes over the forget set")
    lr: float = Field(
        2e-4,
        gt=0,
        description="Learning rate (on BreastMNIST, SalUn-CRA under-forgot at 5e-5 and lost test accuracy at 1e-3; "
        "benchmarks/RESULTS.md)",
    )
    retain_ratio: float = Field(
        2.0, gt=0, description="Retain samples per forget sample in each step (keeps accuracy on retained data)"
    )
    retain_per_epoch: Literal["paired", "all"] = Field(
        "paired", description="paired: retain_ratio x |forget| retain samples per epoch; all: the whole retain set"
    )
    freeze_output_bias: bool = Field(
        False, description="Keep the output layer's bias fixed, so the decision threshold cannot be what moves"
    )


def random_wrong_labels(labels: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """A label different from the true one for every sample, uniform over the wrong classes.

    Uniform over *all* classes (as in the reference implementation) gives the true label
    back with probability 1/K: half the "random" labels of a binary task would be correct.
    """
    shift = torch.randint(1, num_classes, labels.shape, generator=gen)
    return (labels + shift) % num_classes


def random_labels(labels: torch.Tensor, num_classes: int, gen: torch.Generator, draw: str) -> torch.Tensor:
    """``wrong``: a different class for every sample; ``uniform``: any class, as the reference code draws them."""
    if draw == "uniform":
        return torch.randint(0, num_classes, labels.shape, generator=gen)
    return random_wrong_labels(labels, num_classes, gen)


def uniform_target_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to the uniform distribution, per sample: minimal at maximum predictive entropy."""
    return -F.log_softmax(logits, dim=1).mean(dim=1)


def _trainable(model: nn.Module, freeze_output_bias: bool) -> list[nn.Parameter]:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return [p for p in model.parameters() if not (freeze_output_bias and p is last.bias)]


def confidence(logits: torch.Tensor, labels: torch.Tensor, among: torch.Tensor | None = None) -> torch.Tensor:
    """phi = z_y - logsumexp(z_k) over the other classes (``among``: per class, a mask of the classes to compare
    with), differentiable: the log-odds of the true class."""
    others = logits.scatter(1, labels[:, None], float("-inf"))
    if among is not None:
        others = others.masked_fill(~among[labels], float("-inf"))
    return logits.gather(1, labels[:, None]).squeeze(1) - torch.logsumexp(others, 1)


@dataclass(frozen=True)
class RetainAnchor:
    """A term that keeps retained samples where the original model had them, on the same batch.

    ``weight``: one for every class or one per class (0: no anchor). ``form``: ``logits`` holds every logit
    (squared distance), ``confidence`` holds back only a fall in the true class's log-odds (squared shortfall;
    a retained sample may become surer, and its other logits may move).
    """

    weight: float | torch.Tensor = 0.0
    form: Literal["logits", "confidence"] = "logits"


class _Anchor:
    """The original model, frozen, run on each training batch: the retain samples are kept near it (RetainAnchor).

    A copy of the task's frozen original runs in training mode like the model, so both normalise the batch
    with the same batch statistics (the copy's running statistics drift, which nothing reads; the task's
    original stays untouched).
    """

    def __init__(self, original: nn.Module, weight: torch.Tensor, form: str) -> None:
        self.reference = copy.deepcopy(original).train().requires_grad_(False)
        self.weight = weight  # per class of the retain sample
        self.form = form

    def loss(self, x: torch.Tensor, logits: torch.Tensor, n_forget: int, labels: torch.Tensor) -> torch.Tensor:
        """Weighted anchor term of the retain rows (after ``n_forget`` forget rows; ``labels``)."""
        with torch.no_grad():
            ref = self.reference(x)[n_forget:]
        if self.form == "confidence":
            shortfall = F.relu(confidence(ref, labels) - confidence(logits[n_forget:], labels))
            return shortfall**2 @ self.weight[labels] / len(x)
        squared = (logits[n_forget:] - ref) ** 2
        if bool((self.weight == self.weight[0]).all()):  # one weight: summed as before, so results reproduce
            return self.weight[0] * squared.sum() / len(x)
        return squared.sum(1) @ self.weight[labels] / len(x)


def _sizes(n_f: int, n_r: int, p: PairedParams) -> tuple[int, int, int]:
    """Forget and retain samples per step, and steps per epoch."""
    if p.retain_per_epoch == "all":
        steps = max(1, math.ceil((n_f + n_r) / p.batch_size))
        bf = max(1, math.ceil(n_f / steps))
        return bf, min(math.ceil(n_r / steps), n_r), steps
    bf = max(1, round(p.batch_size / (1 + p.retain_ratio)))
    return bf, min(p.batch_size - bf, n_r), math.ceil(n_f / bf)


def forget_retain_loop(
    task: UnlearnTask,
    p: PairedParams,
    objective: Objective,
    forget_labels: torch.Tensor | None = None,
    after_step: Callable[[], None] | None = None,
    description: str = "unlearn",
    retain_anchor: RetainAnchor | None = None,
) -> nn.Module:
    """Optimise ``objective`` over forget batches paired with fresh retain samples, until the stop rule says done.

    Args:
        task: the method's task (its model is changed in place).
        p: optimisation, pairing and stopping settings.
        objective: the per-batch loss.
        forget_labels: labels to train the forget samples toward (default: their own).
        after_step: run after every optimizer step (e.g. SalUn's mask enforcement).
        description: the progress task's name.
        retain_anchor: a term keeping the retain samples where the original model had them on the same batch
            (None: none). A retain sample the model is sure of gives cross-entropy no gradient, so without it
            nothing resists a forget term that pulls retained data down too.

    Returns:
        The model, in eval mode.
    """
    # size: one loop over epochs and steps, with the stopping check; splitting it would scatter its state.
    model, dev = task.model, task.device
    gen = seed_everything(task.seed)
    f_img, r_img = task.forget.images.to(dev), task.retain.images.to(dev)
    f_lab = (task.forget.labels if forget_labels is None else forget_labels).to(dev)
    r_lab = task.retain.labels.to(dev)
    n_f, n_r = len(task.forget), len(task.retain)
    bf, br, steps = _sizes(n_f, n_r, p)
    opt = make_optimizer(_trainable(model, p.freeze_output_bias), p.optimizer, p.lr, p.momentum, p.weight_decay)
    sched = make_scheduler(opt, p.schedule, p.epochs * steps, p.warmup_steps)
    fmt = torch.channels_last if dev.type == "cpu" else torch.contiguous_format
    rule = StopRule(task, p, steps)
    spec = retain_anchor or RetainAnchor()
    anchor_weight = torch.as_tensor(spec.weight, dtype=torch.float32).expand(task.num_classes).to(dev)
    anchor = _Anchor(task.original, anchor_weight, spec.form) if bool(anchor_weight.max() > 0) else None
    step = 0
    model.train()
    with progress.track(description, p.epochs * steps) as job:
        for _ in range(p.epochs):
            f_order = torch.randperm(n_f, generator=gen).to(dev)
            r_order = torch.randperm(n_r, generator=gen).to(dev)
            for s in range(steps):
                fr = f_order[(s * bf) % n_f : (s * bf) % n_f + bf]
                rr = r_order.roll(-s * br)[:br] if br else r_order[:0]
                x = to_float(torch.cat([f_img[fr], r_img[rr]])).contiguous(memory_format=fmt)
                with compute_clock.running(dev):
                    logits = model(x)
                    loss = objective(logits[: len(fr)], f_lab[fr], fr, logits[len(fr) :], r_lab[rr])
                    if anchor is not None:
                        loss = loss + anchor.loss(x, logits, len(fr), r_lab[rr])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    if after_step is not None:
                        after_step()
                job.advance(1, f"loss {loss.item():.3f}")
                step += 1
                if rule.done(model, step):
                    job.note(f"{rule.last}: forgotten, stop")
                    return rule.finish(model, step, p.epochs * steps)
    return rule.finish(model, step, p.epochs * steps)


def retain_loop(
    task: UnlearnTask, p: OptimParams, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], stop: StopParams
) -> nn.Module:
    """Fine-tune on the retain set alone (FT, l1-sparse), ``p.epochs`` passes, with the stop rule.

    ``loss_fn(logits, labels)`` is the per-batch loss; no validation-based epoch selection (that would let the
    validation split, which the verdict refits thresholds on, choose the model).
    """
    model, dev = task.model, task.device
    gen = seed_everything(task.seed)
    images, labels = task.retain.images.to(dev), task.retain.labels.to(dev)
    steps = math.ceil(len(task.retain) / p.batch_size)
    opt = make_optimizer(list(model.parameters()), p.optimizer, p.lr, p.momentum, p.weight_decay)
    sched = make_scheduler(opt, p.schedule, p.epochs * steps, p.warmup_steps)
    fmt = torch.channels_last if dev.type == "cpu" else torch.contiguous_format
    rule = StopRule(task, stop, steps)
    step = 0
    model.train()
    with progress.track("retain fine-tuning", p.epochs * steps) as job:
        for _ in range(p.epochs):
            order = torch.randperm(len(labels), generator=gen).to(dev)
            for rows in order.split(p.batch_size):
                with compute_clock.running(dev):
                    loss = loss_fn(model(to_float(images[rows]).contiguous(memory_format=fmt)), labels[rows])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                job.advance(1, f"loss {loss.item():.3f}")
                step += 1
                if rule.done(model, step):
                    job.note(f"{rule.last}: forgotten, stop")
                    return rule.finish(model, step, p.epochs * steps)
    return rule.finish(model, step, p.epochs * steps)


__all__ = [
    "OptimParams",
    "PairedParams",
    "RetainAnchor",
    "confidence",
    "forget_retain_loop",
    "random_labels",
    "random_wrong_labels",
    "retain_loop",
    "uniform_target_loss",
]
