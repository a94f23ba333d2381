"""Wall time of the methods, and of the retrain-free verdict, against one fresh retrain, in one quiet process.

Studies and unlearn_bench.py reuse cached retrains, and their runs share the machine with other work,
so their time columns are only indicative. This script times, in one process on an otherwise idle
machine: one retrain trained from scratch (an empty cache), each method at its defaults (including the
operating-point recalibration that ``unlearn`` applies), and the extra work of ``--baseline
calibrated`` (evaluating the unlearned and original models; no retraining; ``--no-verdict`` leaves it out).
Pass an original checkpoint (e.g. one from the study cache). The methods run on it as ``medforget train``
writes it, with the model's logits recorded (``medforget.outputs``): an original without them gets them
first, in a copy, and the time that took (once per model, at training) is reported; ``--without-outputs``
times the methods on a copy without them, and ``--compare`` both ways, request by request.

    OMP_NUM_THREADS=2 python benchmarks/unlearn_timing.py ORIGINAL.safetensors --methods salun salun-cra \\
        --designs random positive-heavy --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import tempfile
import time

import torch

os.environ["MEDFORGET_CACHE_DIR"] = tempfile.mkdtemp()  # before medforget is imported: no cached retrain

from _results import append, markdown_table

from medforget import outputs as recorded
from medforget.baseline import retrain_seeds, train_or_load
from medforget.calibrate import context
from medforget.checkpoint import checkpoint_bytes, load_checkpoint
from medforget.config import UnlearnSettings
from medforget.data import load_from_spec
from medforget.evaluation import evaluate, evaluate_logits
from medforget.request import design_request
from medforget.session import Task, open_task
from medforget.unlearn import run_unlearning

Timing = tuple[str, float, float, float, str]


def time_methods(
    original: str,
    task: Task,
    methods: list[str],
    params: dict,
    seed: int,
    verdict: bool = True,
    calibration: str | None = None,
) -> list[Timing]:
    """Per method on ``task``'s request: ``(method, method s, unlearn s, calibrated-verdict s or nan, steps /
    budget)``; ``calibration``: a calibration file for a stopping rule with ``stop_target=calibrated``."""
    req, out = task.resolved.request, []
    for m in methods:
        settings = UnlearnSettings(
            method=m, params=params, seed=seed, device="cpu", baseline="none", calibration=calibration
        )
        start = time.perf_counter()
        result = run_unlearning(open_task(original, req, device="cpu", allow_class_removal=True), settings)
        total_s = time.perf_counter() - start
        start = time.perf_counter()  # --baseline calibrated: both models evaluated, nothing retrained
        if verdict:
            ctx, sets, recorded_logits = context(task), task.eval_sets(), task.recorded_eval_logits()
            evaluate(result.model, sets, ctx, task.device)
            if recorded_logits is None:
                evaluate(task.original(), sets, ctx, task.device)
            else:
                evaluate_logits(recorded_logits, sets, ctx)
        verdict_s = time.perf_counter() - start if verdict else float("nan")
        stop = result.report.stopping
        steps = f"{stop.steps}/{stop.max_steps}" if stop is not None else "-"
        out.append((m, result.report.cost.method_seconds, total_s, verdict_s, steps))
    return out


def variants(original: str, ds, without: bool, compare: bool) -> tuple[list[tuple[str, str]], float]:
    """The originals to time the methods on, ``(label, path)``: as ``medforget train`` writes it (with recorded
    outputs) unless ``without``, and also without them if ``compare``; and the seconds recording them took (nan if
    the original had them). Copies are written to the temporary cache folder."""
    ck = load_checkpoint(original)
    folder = os.environ["MEDFORGET_CACHE_DIR"]
    start = time.perf_counter()
    needed = not ck.outputs and (compare or not without)
    outputs = recorded.record(ck.build_model("cpu"), ds, torch.device("cpu")) if needed else ck.outputs
    record_s = time.perf_counter() - start if needed else float("nan")
    bare = " (no recorded outputs)"
    chosen = [bare] if without else ["", bare] if compare else [""]
    found = []
    for label in chosen:  # only the copies that are timed are written
        path = os.path.join(folder, f"original{'-bare' if label else ''}.safetensors")
        with open(path, "wb") as f:
            f.write(checkpoint_bytes(ck.state, ck.meta, None, None if label else outputs))
        found.append((label, path))
    return found, record_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("original")
    ap.add_argument("--methods", nargs="+", default=["salun", "salun-cra", "random-label"])
    ap.add_argument("--designs", nargs="+", default=["random"], help="random, positive-heavy, ...")
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="request seeds (each a request of its own)")
    ap.add_argument("--param", action="append", default=[], help="key=value for every method (JSON values)")
    ap.add_argument("--calibration", help="calibration file (medforget calibrate), for -p stop_target=calibrated")
    ap.add_argument("--no-verdict", action="store_true", help="do not time the calibrated verdict's evaluations")
    ap.add_argument("--without-outputs", action="store_true", help="an original without recorded outputs")
    ap.add_argument("--compare", action="store_true", help="time every method with and without recorded outputs")
    args = ap.parse_args()
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    ds = load_from_spec(load_checkpoint(args.original).meta.dataset.spec)
    originals, record_s = variants(args.original, ds, args.without_outputs, args.compare)
    args.original = originals[0][1]
    requests = {(d, s): design_request(ds, d, args.fraction, s) for d in args.designs for s in args.seeds}
    first = next(iter(requests.values()))
    task = open_task(args.original, first, device="cpu", allow_class_removal=True)
    recipe = task.checkpoint.meta.train_config
    start = time.perf_counter()
    train_or_load(task.dataset, recipe, task.retain, retrain_seeds(recipe.seed, 1)[0], task.device)
    retrain_s = time.perf_counter() - start
    rows, shares = [], {}
    for ((design, seed), req), (label, original) in itertools.product(requests.items(), originals):
        task = open_task(original, req, device="cpu", allow_class_removal=True)
        for m, method_s, total_s, verdict_s, steps in time_methods(
            original, task, args.methods, params, seed, not args.no_verdict, args.calibration
        ):
            m += label
            shares.setdefault(m, []).append(100 * method_s / retrain_s)
            rows.append([ds.name, f"{design}{round(100 * args.fraction)}", seed, m,
                         ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults", steps, f"{method_s:.1f}",
                         f"{retrain_s:.1f}", f"{100 * method_s / retrain_s:.1f}%", f"{total_s:.1f}",
                         "not timed" if math.isnan(verdict_s) else f"{100 * verdict_s / retrain_s:.1f}%"])  # fmt: skip
            print(rows[-1], flush=True)
    header = ["dataset", "forget set", "request seed", "method", "params", "steps / budget", "method s",
              "one retrain s", "method / retrain", "unlearn s (method + recalibration + evaluation)",
              "calibrated verdict / retrain"]  # fmt: skip
    target = {m: ("yes" if max(v) <= 10 else "no") if m == "salun-cra" else "" for m, v in shares.items()}
    summary = markdown_table(
        ["method", "requests", "method / retrain: mean", "worst", "target (SalUn-CRA) <= 10%"],
        [[m, len(v), f"{sum(v) / len(v):.1f}%", f"{max(v):.1f}%", target[m]] for m, v in shares.items()],
    )
    if args.without_outputs:
        outputs = "The original carried no recorded outputs: every request ran it on the sets it needed."
    elif args.compare:
        took = "" if math.isnan(record_s) else f"; recording them took {record_s:.1f} s, once per model"
        outputs = (f"Every method ran on the original with its recorded outputs (medforget.outputs{took}) and, "
                   "marked, on a copy without them.")  # fmt: skip
    elif math.isnan(record_s):
        outputs = "The original carried its recorded outputs (medforget.outputs), as medforget train writes them."
    else:
        outputs = (f"The original was given its recorded outputs first, as medforget train writes them (a copy; "
                   f"{record_s:.1f} s, {100 * record_s / retrain_s:.1f}% of the retrain, once per model).")  # fmt: skip
    append(
        "Quiet timing: methods and the retrain-free verdict against one fresh retrain (unlearn_timing.py)",
        markdown_table(header, rows) + "\n\n" + summary,
        "One process, nothing else running; the retrain is trained fresh (empty cache) in the same process, on "
        f"the first request. {outputs} Targets: SalUn-CRA at most 10% of one retrain on every request (issue "
        "11); the calibrated verdict's extra work (its evaluations) at most 10% of one retrain (issue 10).",
    )


if __name__ == "__main__":
    main()
