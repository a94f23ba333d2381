"""One model on two processes: ``torchrun`` DDP (gloo) against one process, on CPU.

On a 2-core CPU this measures correctness and overhead, not speed: the same recipe is trained by one
process with one thread (the reference), by two processes under torchrun (one thread each), and, as
yardsticks of the noise any change brings, by one process with two threads (other float sums) and by one
process with another seed. Reported: test accuracy and FNR, agreement of test predictions with the
reference, the recorded world size, the training time the checkpoint reports and the command's wall time
(start-up and rendezvous included).

    python benchmarks/ddp_cpu.py --dataset breastmnist --arch resnet18 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _results import append, markdown_table

from medforget.checkpoint import load_checkpoint
from medforget.data import load_medmnist
from medforget.engine import predict

REPO = Path(__file__).resolve().parents[1]


def train(out: Path, args, procs: int, threads: int, seed: int) -> tuple[dict, float]:
    recipe = ["--dataset", args.dataset, "--arch", args.arch, "--epochs", str(args.epochs), "--batch-size",
              str(args.batch_size), "--lr", str(args.lr), "--seed", str(seed), "--device", "cpu"]  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs)]
    launch = [sys.executable, "-m", "medforget"] if procs == 0 else [*torchrun, "-m", "medforget"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    res = subprocess.run([*launch, "train", *recipe, "--out", str(out), "--json", "--quiet"], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(res.stdout), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="breastmnist")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    ds = load_medmnist(args.dataset)
    load0 = os.getloadavg()[0]
    runs = [
        ("1 process, 1 thread (reference)", 0, 1, 0),
        ("torchrun 2 processes, 1 thread each", 2, 1, 0),
        ("1 process, 2 threads (noise: float sums)", 0, 2, 0),
        ("1 process, 1 thread, seed 1 (noise: seed)", 0, 1, 1),
    ]
    rows, preds = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, procs, threads, seed in runs:
            out = Path(tmp) / f"{procs}-{threads}-{seed}.safetensors"
            summary, wall = train(out, args, procs, threads, seed)
            ck = load_checkpoint(out)
            preds[name] = predict(ck.build_model("cpu"), ds.test, torch.device("cpu")).argmax(1)
            agree = float((preds[name] == preds[runs[0][0]]).float().mean())
            rt = ck.meta.runtime
            rows.append([name, rt.world_size if rt else "?", f"{100 * summary['test']['accuracy']:.1f}",
                         f"{100 * summary['test']['fnr']:.1f}", f"{100 * agree:.1f}%", summary["best_epoch"],
                         f"{summary['seconds']:.1f}", f"{wall:.1f}"])  # fmt: skip
    table = markdown_table(["run", "world size", "test acc %", "test FNR %", "same test predictions as reference",
                            "best epoch", "training s", "command wall s"], rows)  # fmt: skip
    notes = (
        f"{args.dataset}, {args.arch}, {args.epochs} epochs, global batch {args.batch_size} "
        f"({args.batch_size // 2} per rank with 2 processes), lr {args.lr}. Under load: 1-minute load average "
        f"{load0:.1f} at the start and {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores (other jobs "
        "shared the machine), so the times compare the runs of this table only roughly."
    )
    append("1 vs 2 processes (torchrun, gloo) on CPU (ddp_cpu.py)", table, notes, record=not args.no_record)


if __name__ == "__main__":
    main()
