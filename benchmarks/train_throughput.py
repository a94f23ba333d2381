"""Training throughput: the real data pipeline vs raw forward+backward on in-memory tensors.

The pipeline (uint8 split in memory, per-batch normalisation, channels_last, the shared
``fit`` loop with its progress bar and per-epoch validation switched off) should reach at
least 90% of the raw speed of the same model, optimizer and batch shape.

    python benchmarks/train_throughput.py --dataset breastmnist --epochs 3
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from _results import append, markdown_table

from medforget.config import TrainConfig
from medforget.data import load_medmnist
from medforget.engine import build_model, fit, make_optimizer


def raw_throughput(model: torch.nn.Module, cfg: TrainConfig, shape: tuple[int, ...], steps: int) -> float:
    """Images/s of forward+backward+step on a random tensor already in memory (the ceiling)."""
    x = torch.randn(cfg.batch_size, *shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (cfg.batch_size,))
    opt = make_optimizer(list(model.parameters()), cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    model.train()
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return steps * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="breastmnist")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args()

    ds = load_medmnist(args.dataset)
    cfg = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, seed=0)
    dev = torch.device("cpu")
    model = build_model(cfg, ds, dev)
    # Warm up the kernels once, then time full epochs of the real loop (no validation).
    fit(
        model,
        ds.train.subset(range(2 * cfg.batch_size)),
        cfg.model_copy(update={"epochs": 1}),
        dev,
    )
    start = time.perf_counter()
    result = fit(model, ds.train, cfg, dev)
    pipeline = result.images_seen / (time.perf_counter() - start)
    steps = max(args.epochs * len(ds.train) // cfg.batch_size, 5)
    raw = raw_throughput(build_model(cfg, ds, dev), cfg, tuple(ds.train.images.shape[1:]), steps)
    ratio = pipeline / raw
    rows = [
        [
            args.dataset,
            args.arch,
            f"{ds.spec.size} px",
            cfg.batch_size,
            f"{pipeline:.1f}",
            f"{raw:.1f}",
            f"{100 * ratio:.1f}%",
            "yes" if ratio >= 0.9 else "NO",
        ]
    ]
    table = markdown_table(
        ["dataset", "arch", "size", "batch", "pipeline img/s", "raw img/s", "pipeline/raw", "target >= 90%"], rows
    )
    append("Training throughput (train_throughput.py)", table, record=not args.no_record)


if __name__ == "__main__":
    main()
