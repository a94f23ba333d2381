"""Evaluation throughput: ``predict`` at several batch sizes, and whether the logits are the same.

``predict`` (every evaluation: SalUn-CRA's checks, recalibration, verification, audit) uses
``engine.PREDICT_BATCH`` images per forward pass. This measures images/s on a real split for each
batch size, the best of ``--repeats`` passes, and the largest logit difference from the 512 batching.

    OMP_NUM_THREADS=2 python benchmarks/eval_throughput.py --datasets breastmnist pneumoniamnist
"""

from __future__ import annotations

import argparse
import time

import torch
from _results import append, markdown_table

from medforget.config import TrainConfig
from medforget.data import load_medmnist
from medforget.engine import PREDICT_BATCH, build_model, predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["breastmnist", "pneumoniamnist"])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--split", default="test")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[512, 256, 128, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args()

    dev, rows = torch.device("cpu"), []
    for name in args.datasets:
        ds = load_medmnist(name)
        split = ds.splits[args.split]
        torch.manual_seed(0)
        model = build_model(TrainConfig(arch=args.arch, seed=0), ds, dev).eval()
        predict(model, split.subset(range(64)), dev)  # warm-up
        reference = None
        for bs in args.batch_sizes:
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                logits = predict(model, split, dev, bs)
                best = min(best, time.perf_counter() - start)
            reference = logits if reference is None else reference
            diff = float((logits - reference).abs().max())
            default = " (default)" if bs == PREDICT_BATCH["cpu"] else ""
            rows.append([name, args.split, len(split), f"{bs}{default}", f"{best:.2f}", f"{len(split) / best:.0f}",
                         f"{diff:.1e}"])  # fmt: skip
    first = args.batch_sizes[0]
    header = ["dataset", "split", "images", "batch size", "best s", "images/s", f"largest logit difference vs {first}"]
    table = markdown_table(header, rows)
    notes = f"{args.arch} (seed-0 initial weights), CPU, best of {args.repeats} passes over the split."
    append("Evaluation throughput by batch size (eval_throughput.py)", table, notes, record=not args.no_record)


if __name__ == "__main__":
    main()
