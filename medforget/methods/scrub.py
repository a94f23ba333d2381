"""``scrub``: SCalable Remembering and Unlearning unBound (Kurmanji et al., NeurIPS 2023).

Teacher-student: the student starts as the original model. "Max" steps push the student's
predictions on forget samples away from the frozen teacher's (maximise KL); "min" steps keep
it close to the teacher on retain samples (minimise KL + CE). Max steps run only in the first
``max_epochs`` epochs, then min steps alone repair what the max steps damaged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from medforget.data import to_float
from medforget.engine import compute_clock, make_optimizer, progress_bar, seed_everything
from medforget.methods import UnlearnTask, register
from medforget.methods._loop import PairedParams


class Params(PairedParams):
    epochs: int = Field(3, ge=1, description="Epochs of min steps (each with retain_ratio x |forget| samples)")
    max_epochs: int = Field(2, ge=0, description="Epochs that start with a max pass over the forget set")
    lr: float = Field(1e-4, gt=0)
    temperature: float = Field(4.0, gt=0, description="Distillation temperature")
    kl_weight: float = Field(0.001, ge=0, description="alpha: KL-to-teacher weight in min steps")
    ce_weight: float = Field(0.99, ge=0, description="gamma: cross-entropy weight in min steps")


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
    max_steps = math.ceil(len(task.forget) / p.batch_size)
    min_steps = math.ceil(n_min / p.batch_size)
    total = p.epochs * min_steps + min(p.max_epochs, p.epochs) * max_steps

    def step(images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor, maximise: bool) -> float:
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
        return loss.item()

    student.train()
    with progress_bar(task.show_progress) as bar:
        job = bar.add_task("scrub", total=total, info="")
        for epoch in range(p.epochs):
            if epoch < p.max_epochs:
                order = torch.randperm(len(task.forget), generator=gen).to(dev)
                for rows in order.split(p.batch_size):
                    bar.update(job, advance=1, info=f"max {step(f_img, f_lab, rows, True):.3f}")
            order = torch.randperm(len(task.retain), generator=gen)[:n_min].to(dev)
            for rows in order.split(p.batch_size):
                bar.update(job, advance=1, info=f"min {step(r_img, r_lab, rows, False):.3f}")
    return student.eval()
