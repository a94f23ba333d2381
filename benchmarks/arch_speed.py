"""The quick architectures side by side: training time and accuracy of one recipe, in one quiet process.

``resnet10s`` is ResNet-10 with a stride-2 stem for small inputs, a quarter of its multiply-adds at 28 px;
the test suite trains it. This script trains each architecture with the suite's recipe (5 epochs, batch 32,
lr 1e-3, best epoch on validation) for a few seeds and reports wall time, validation and test accuracy and
the test false-negative rate. Time ratios are only meaningful when nothing else runs.

    OMP_NUM_THREADS=1 python benchmarks/arch_speed.py --archs resnet10 resnet10s --seeds 0 1
"""

from __future__ import annotations

import argparse
import statistics
import time

from _results import append, markdown_table

from medforget.config import TrainConfig
from medforget.data import load_medmnist
from medforget.train import fit_original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="breastmnist")
    ap.add_argument("--archs", nargs="+", default=["resnet10", "resnet10s"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args()
    ds = load_medmnist(args.dataset)
    rows, seconds = [], {}
    for arch in args.archs:
        for seed in args.seeds:
            cfg = TrainConfig(arch=arch, epochs=args.epochs, batch_size=32, lr=1e-3, seed=seed)
            start = time.perf_counter()
            metrics = fit_original(ds, cfg, "cpu").meta.metrics
            took = time.perf_counter() - start
            seconds.setdefault(arch, []).append(took)
            pct = [f"{100 * metrics.get(k, float('nan')):.1f}%" for k in ("val_accuracy", "test_accuracy", "test_fnr")]
            rows.append([arch, seed, f"{took:.1f}", *pct])
            print(rows[-1], flush=True)
    base = statistics.mean(seconds[args.archs[0]])
    summary = markdown_table(
        ["arch", "mean s", f"time / {args.archs[0]}"],
        [[a, f"{statistics.mean(s):.1f}", f"{statistics.mean(s) / base:.2f}"] for a, s in seconds.items()],
    )
    table = markdown_table(["arch", "seed", "train s", "val acc", "test acc", "test FNR"], rows)
    append(
        f"Quick architectures on {args.dataset}: time and accuracy of the test recipe (arch_speed.py)",
        table + "\n\n" + summary,
        f"{args.epochs} epochs, batch 32, lr 1e-3, the best validation epoch kept; training and the final "
        "validation and test evaluation timed together, in one process.",
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
