"""Wall time of the methods, and of the retrain-free verdict, against one fresh retrain, in one quiet process.

Studies and unlearn_bench.py reuse cached retrains, and their runs share the machine with other work,
so their time columns are only indicative. This script times, in one process on an otherwise idle
machine: one retrain trained from scratch (an empty cache), each method at its defaults (including the
operating-point recalibration that ``unlearn`` applies), and the extra work of ``--baseline
calibrated`` (evaluating the unlearned and original models; no retraining). Pass an original checkpoint
(e.g. one from the study cache).

    OMP_NUM_THREADS=2 python benchmarks/unlearn_timing.py ORIGINAL.safetensors --methods salun salun-cra
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ["MEDFORGET_CACHE_DIR"] = tempfile.mkdtemp()  # before medforget is imported: no cached retrain

from _results import append, markdown_table

from medforget.baseline import retrain_seeds, train_or_load
from medforget.calibrate import context
from medforget.checkpoint import load_checkpoint
from medforget.config import UnlearnSettings
from medforget.data import load_from_spec
from medforget.evaluation import evaluate
from medforget.request import design_request
from medforget.session import open_task
from medforget.unlearn import run_unlearning


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("original")
    ap.add_argument("--methods", nargs="+", default=["salun", "salun-cra", "random-label"])
    ap.add_argument("--design", default="random")
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--param", action="append", default=[], help="key=value for every method (JSON values)")
    args = ap.parse_args()
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    ds = load_from_spec(load_checkpoint(args.original).meta.dataset.spec)
    req = design_request(ds, args.design, args.fraction, args.seed)
    task = open_task(args.original, req, device="cpu", allow_class_removal=True)
    recipe = task.checkpoint.meta.train_config
    start = time.perf_counter()
    train_or_load(task.dataset, recipe, task.retain, retrain_seeds(recipe.seed, 1)[0], task.device)
    retrain_s = time.perf_counter() - start
    cell = f"{args.design}{round(100 * args.fraction)}"
    rows = []
    for m in args.methods:
        settings = UnlearnSettings(method=m, params=params, seed=args.seed, device="cpu", baseline="none")
        start = time.perf_counter()
        result = run_unlearning(open_task(args.original, req, device="cpu", allow_class_removal=True), settings)
        method_s = result.report.cost.method_seconds
        total_s = time.perf_counter() - start
        start = time.perf_counter()  # --baseline calibrated: both models evaluated, nothing retrained
        ctx = context(task)
        for model in (result.model, task.original()):
            evaluate(model, task.eval_sets(), ctx, task.device)
        verdict_s = time.perf_counter() - start
        rows.append([ds.name, cell, m, ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults",
                     f"{method_s:.1f}", f"{retrain_s:.1f}", f"{100 * method_s / retrain_s:.1f}%",
                     f"{total_s:.1f}", f"{100 * verdict_s / retrain_s:.1f}%"])  # fmt: skip
        print(rows[-1], flush=True)
    header = ["dataset", "forget set", "method", "params", "method s", "one retrain s", "method / retrain",
              "unlearn s (method + recalibration + evaluation)", "calibrated verdict / retrain"]  # fmt: skip
    append(
        "Quiet timing: methods and the retrain-free verdict against one fresh retrain (unlearn_timing.py)",
        markdown_table(header, rows),
        "One process, nothing else running; the retrain is trained fresh (empty cache) in the same process. "
        "Targets: SalUn-CRA at most 10% of one retrain (issue 11); the calibrated verdict's extra work (two "
        "evaluations) at most 10% of one retrain (issue 10).",
    )


if __name__ == "__main__":
    main()
