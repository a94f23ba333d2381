"""``scrub``: SCalable Remembering and Unlearning unBound (Kurmanji et al., NeurIPS 2023).

Teacher-student: the student starts as the original model. "Max" steps push the student's
predictions on forget samples away from the frozen teacher's (maximise KL); "min" steps keep
it close to the teacher on retain samples (minimise KL + CE). Max steps run only in the first
``max_epochs`` epochs, then min steps alone repair what the max steps damaged.

``published`` is the authors' small-scale recipe (see its comment); the default is a cheaper setting
with the threshold-free stop rule checked during the repair phase.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget import progress
from medforget.data import to_float
from medforget.engine import compute_clock, make_optimizer, make_scheduler, seed_everything
from medforget.methods._loop import OptimParams
from medforget.methods._registry import UnlearnTask, register
from medforget.methods._stop import StopParams, StopRule


class Params(OptimParams, StopParams):
    epochs: int = Field(3, ge=1, description="Epochs of min steps (each over retain_ratio x |forget| retain samples)")
    max_epochs: int = Field(2, ge=0, description="Epochs that start with a max pass over the forget set")
    lr: float = Field(1e-4, gt=0)
    retain_ratio: float = Field(2.0, gt=0, description="Retain samples per forget sample in each epoch's min steps")
    retain_per_epoch: Literal["paired", "all"] = Field("paired", description="all: min steps over the whole retain set")
    temperature: float = Field(4.0, gt=0, description="Distillation temperature")
    kl_weight: float = Field(0.001, ge=0, description="alpha: KL-to-teacher weight in min steps")
    ce_weight: float = Field(0.99, ge=0, description="gamma: cross-entropy weight in min steps")

    PRESETS: ClassVar[dict] = {
        # The authors' small-scale setting (meghdadk/SCRUB): SGD 5e-4, momentum 0.9, weight decay 5e-4,
        # 5 epochs of which 3 with max steps, temperature 4, alpha 0.001, gamma 0.99, min steps over all retain.
        "published": {
            "optimizer": "sgd",
            "lr": 5e-4,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "epochs": 5,
            "max_epochs": 3,
            "retain_per_epoch": "all",
            "stop": "none",
        }
    }
    SEARCH: ClassVar[dict] = {
        "lr": ("log", 1e-5, 1e-2),
        "epochs": ("int", 1, 8),
        "max_epochs": ("int", 0, 5),
        "kl_weight": ("log", 1e-4, 1.0),
        "temperature": ("float", 1.0, 8.0),
    }


def _kl(student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
    return F.kl_div(F.log_softmax(student / t, 1), F.softmax(teacher / t, 1), reduction="batchmean") * t * t


@register("scrub", Params, summary="Teacher-student: max KL on forget, min KL+CE on retain (SCRUB)")
def scrub(task: UnlearnTask, p: Params) -> nn.Module:
    student, teacher, dev = task.model, task.original, task.device
    gen = seed_everything(task.seed)
    opt = make_optimizer(list(student.parameters()), p.optimizer, p.lr, p.momentum, p.weight_decay)
    fmt = torch.channels_last if dev.type == "cpu" else torch.contiguous_format
    f_img, f_lab = task.forget.images.to(dev), task.forget.labels.to(dev)
    r_img, r_lab = task.retain.images.to(dev), task.retain.labels.to(dev)
    n_min = min(len(task.retain), max(p.batch_size, round(p.retain_ratio * len(task.forget))))
    if p.retain_per_epoch == "all":
        n_min = len(task.retain)
    max_steps = math.ceil(len(task.forget) / p.batch_size)
    min_steps = math.ceil(n_min / p.batch_size)
    total = p.epochs * min_steps + min(p.max_epochs, p.epochs) * max_steps
    sched = make_scheduler(opt, p.schedule, total, p.warmup_steps)
    rule = StopRule(task, p, min_steps)
    taken = 0  # optimizer steps, max and min; the rule counts min steps only

    def step(images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor, maximise: bool) -> float:
        nonlocal taken
        taken += 1
        x = to_float(images[rows]).contiguous(memory_format=fmt)
        with compute_clock.running(dev):
            out = student(x)
            with torch.no_grad():
                target = teacher(x)
            kl = _kl(out, target, p.temperature)
            loss = -kl if maximise else p.kl_weight * kl + p.ce_weight * F.cross_entropy(out, labels[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        return loss.item()

    student.train()
    with progress.track("scrub", total) as job:
        for epoch in range(p.epochs):
            if epoch < p.max_epochs:
                order = torch.randperm(len(task.forget), generator=gen).to(dev)
                for rows in order.split(p.batch_size):
                    job.advance(1, f"max {step(f_img, f_lab, rows, True):.3f}")
            order = torch.randperm(len(task.retain), generator=gen)[:n_min].to(dev)
            for i, rows in enumerate(order.split(p.batch_size)):
                job.advance(1, f"min {step(r_img, r_lab, rows, False):.3f}")
                # Only after the max phase: it is what forgets; the min steps that follow repair.
                if epoch >= p.max_epochs - 1 and rule.done(student, epoch * min_steps + i + 1, taken):
                    job.note(f"{rule.last}: forgotten, stop")
                    return rule.finish(student, taken, total)
    return rule.finish(student, taken, total)
