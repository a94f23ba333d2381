"""SalUn's mask threshold: ``torch.kthvalue`` against ``np.partition`` on a real model's gradient magnitudes.

``methods.salun.saliency`` keeps the top ``mask_fraction`` of |d forget-loss / d w| over every weight of the
model (11 million for ResNet-18), so it needs one order statistic of that vector per run. This takes the
gradient of the cached original's loss on real training images, finds the threshold both ways (best of
``--repeats``), and checks that the values, and so the masks, are identical.

    OMP_NUM_THREADS=2 python benchmarks/saliency_threshold.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from _results import append, markdown_table
from bench_designs import RECIPES, original_model

from medforget.config import TrainConfig
from medforget.data import load_dataset, to_float


def gradient_magnitudes(dataset: str, images: int) -> torch.Tensor:
    """|d loss / d w| of the cached original on its first ``images`` training images, flattened, in eval mode."""
    ds = load_dataset(dataset, 28)
    model = original_model(ds, TrainConfig(**RECIPES[dataset]), torch.device("cpu")).build_model(torch.device("cpu"))
    model.eval()
    F.cross_entropy(model(to_float(ds.train.images[:images])), ds.train.labels[:images], reduction="sum").backward()
    return torch.cat([p.grad.abs().flatten() for p in model.parameters() if p.grad is not None])


def best_of(repeats: int, fn) -> tuple[float, float]:
    """The fastest of ``repeats`` calls of ``fn`` (seconds) and its result."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), float(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="breastmnist")
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.5, 0.1])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args()
    flat = gradient_magnitudes(args.dataset, args.images).float()
    rows = []
    for fraction in args.fractions:
        keep = max(1, round(fraction * flat.numel()))
        k = flat.numel() - keep
        t_torch, v_torch = best_of(args.repeats, lambda k=k: torch.kthvalue(flat, k + 1).values)
        t_numpy, v_numpy = best_of(args.repeats, lambda k=k: np.partition(flat.numpy(), k)[k])
        rows.append([fraction, f"{flat.numel():,}", f"{t_torch:.3f}", f"{t_numpy:.3f}",
                     f"{100 * t_numpy / t_torch:.0f}%", "yes" if v_torch == v_numpy else "NO"])  # fmt: skip
    table = markdown_table(
        ["mask fraction", "weights", "torch.kthvalue s", "np.partition s", "partition / kthvalue", "same threshold"],
        rows,
    )
    notes = (
        f"{args.dataset}'s cached original (ResNet-18), gradient of the summed loss on its first {args.images} "
        f"training images; best of {args.repeats} each. The mask is `|grad| >= threshold`, so the same threshold "
        "gives the same mask."
    )
    append(
        "SalUn's mask threshold: kthvalue vs partition (saliency_threshold.py)", table, notes, record=not args.no_record
    )


if __name__ == "__main__":
    main()
