"""Does the verdict tell exact unlearning from no unlearning? Specificity, power and the calibrated verdict (issue 10).

For each dataset, forget design and request seed, a pool of M retrains (seeds recipe+1 ... recipe+M, from
the cache that ``retrain_pool.py`` fills) is evaluated once. Then:

* **specificity**: each retrain in turn is judged as if it were the unlearned model, against K *other*
  retrains of the pool (the next K, cyclically): exact unlearning must pass or be inconclusive, never fail;
* **power**: the untouched original is judged against the first K retrains: it must fail;
* **agreement** (``--study DIR --calibration DATASET:DESIGN=FILE ...``): for every run of an
  ``unlearn_bench.py`` study, the verdict without retraining (``medforget calibrate``'s, computed from the
  run's recorded evaluations of the unlearned and original models) against its K-retrain verdict.

Every model is recalibrated to the original's validation sensitivity first, as ``unlearn`` does.

    python benchmarks/verdict_calibration.py --cells breastmnist:random20 breastmnist:disease-heavy20 \\
        --request-seeds 0 1 2 --pool 5 --k 3 --study runs/bench \\
        --calibration breastmnist:random20=cal-random20.json breastmnist:disease-heavy20=cal-dh20.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from _results import append, markdown_table
from bench_designs import DESIGNS, RECIPES, original_model

from medforget.baseline import retrain_distribution, retrain_seeds
from medforget.calibrate import Calibration, context, judge_calibrated, read_calibration
from medforget.config import Thresholds, TrainConfig
from medforget.data import load_dataset
from medforget.evaluation import MEMO, ModelEval
from medforget.recalibrate import retrain_eval
from medforget.request import design_request
from medforget.session import Task, open_task
from medforget.verify.checks import judge
from medforget.verify.evidence import sample_evidence


def judged(candidate: ModelEval, refs: list[ModelEval], task: Task, t: Thresholds):
    """The full verdict of ``candidate`` against ``refs``, with its per-sample evidence."""
    parts = []
    for name, split in (("forget", task.forget), ("test", task.dataset.test)):
        parts.append((candidate.phi(name), np.stack([r.phi(name) for r in refs]), split.labels.numpy()))
    return judge(candidate, refs, sample_evidence(parts[0], parts[1]), t)


def one_request(dataset_name: str, design: str, seed: int, pool: int, k: int) -> list[list[object]]:
    ds = load_dataset(dataset_name, 28)
    dev = torch.device("cpu")
    recipe = TrainConfig(**RECIPES[dataset_name])
    ck = original_model(ds, recipe, dev)
    d = DESIGNS[design]
    task = open_task(ck, design_request(ds, d["design"], d["fraction"], seed), device="cpu", allow_class_removal=True)
    retrains = retrain_distribution(ds, recipe, task.retain_set(), retrain_seeds(recipe.seed, pool), dev, workers=1)
    ctx = context(task)
    evals = [retrain_eval(task, r, ctx) for r in retrains]
    original = MEMO.evaluate(ck.sha256, task.original(), task.eval_sets(), ctx, dev, task.forget.sample_ids)
    t = Thresholds()
    rows = []
    for j in range(pool):
        refs = [evals[(j + 1 + i) % pool] for i in range(k)]
        v = judged(evals[j], refs, task, t)
        failed = [c.name for c in v.checks if c.status == "fail"]
        rows.append([dataset_name, design, seed, f"retrain seed {retrains[j].seed}", v.status, ", ".join(failed)])
    v = judged(original, evals[:k], task, t)
    failed = [c.name for c in v.checks if c.status == "fail"]
    rows.append([dataset_name, design, seed, "original (untouched)", v.status, ", ".join(failed)])
    return rows


def agreement(study: Path, calibrations: dict[tuple[str, str], Calibration]) -> tuple[list[list[object]], str]:
    """Calibrated vs K-retrain verdicts over a study's runs, per dataset and design."""
    cells: dict[tuple[str, str], Counter] = {}
    for path in sorted((study / "runs").rglob("*.json")):
        rec = json.loads(path.read_text())
        cal = calibrations.get((rec["dataset"], rec["forget"]))
        rep = rec["report"]
        if cal is None or rep["unlearned"].get("forget_auc") is None:
            continue
        unlearned, original = ModelEval(**rep["unlearned"]), ModelEval(**rep["original"])
        full, calibrated = rep["verdict"]["status"], judge_calibrated(unlearned, original, cal, Thresholds()).status
        c = cells.setdefault((rec["dataset"], rec["forget"]), Counter())
        c["runs"] += 1
        c["agree"] += full == calibrated
        c["contradict"] += {full, calibrated} == {"pass", "fail"}  # inconclusive is compatible with either
        c[f"{full}->{calibrated}"] += 1
    rows = []
    for (ds, design), c in cells.items():
        pairs = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if "->" in k)
        rows.append([ds, design, c["runs"], c["agree"], f"{100 * c['agree'] / c['runs']:.0f}%", pairs])
    total = sum(c["runs"] for c in cells.values())
    agree = sum(c["agree"] for c in cells.values())
    contradict = sum(c["contradict"] for c in cells.values())
    summary = f"agreement over all runs: {agree}/{total}" + (f" ({100 * agree / total:.0f}%)" if total else "")
    summary += f"; one passes what the other fails: {contradict}/{total}"
    return rows, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=["breastmnist:random20", "breastmnist:disease-heavy20"])
    ap.add_argument("--request-seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--pool", type=int, default=7, help="M retrains per request (each judged against K others)")
    ap.add_argument("--k", type=int, default=3, help="K retrains each verdict compares with")
    ap.add_argument("--study", type=Path, help="an unlearn_bench study folder, for the calibrated agreement")
    ap.add_argument("--calibration", nargs="*", default=[], help="DATASET:DESIGN=FILE written by medforget calibrate")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    rows = []
    for cell in args.cells:
        name, design = cell.split(":")
        for seed in args.request_seeds:
            rows += one_request(name, design, seed, args.pool, args.k)
            print(markdown_table(["dataset", "design", "request seed", "judged", "verdict", "failed"], rows[-3:]))
    table = markdown_table(["dataset", "design", "request seed", "judged", "verdict", "failed checks"], rows)
    summary = []
    for cell in args.cells:
        name, design = cell.split(":")
        fresh = [r for r in rows if r[0] == name and r[1] == design and r[3] != "original (untouched)"]
        orig = [r for r in rows if r[0] == name and r[1] == design and r[3] == "original (untouched)"]
        ok = sum(r[4] != "fail" for r in fresh)
        summary.append(
            [
                name,
                design,
                len(fresh),
                ok,
                f"{100 * ok / len(fresh):.0f}%",
                f"{sum(r[4] == 'fail' for r in orig)}/{len(orig)}",
            ]
        )
    head = [
        "dataset",
        "design",
        "specificity trials",
        "passed or inconclusive",
        "specificity (target >= 95%)",
        "original failed (target: all)",
    ]
    notes_fail = "; ".join(
        f"{r[1]} seed {r[2]}, {r[3]}: {r[5]}" for r in rows if r[3] != "original (untouched)" and r[4] == "fail"
    )
    text = markdown_table(head, summary) + "\n\n" + table
    notes = (
        f"Each retrain judged against the {args.k} next retrains of a pool of {args.pool} (seeds recipe+1 ... "
        f"recipe+{args.pool}); the original judged against the first {args.k}. Default tolerances. "
        f"Exact retrains that failed (design and request seed, retrain: checks): {notes_fail or 'none'}."
    )
    if args.study:
        cals = {}
        for item in args.calibration:
            cell, file = item.split("=", 1)
            cals[tuple(cell.split(":"))] = read_calibration(Path(file))
        agree_rows, agree_summary = agreement(args.study, cals)
        text += "\n\nCalibrated verdict vs K-retrain verdict (target >= 80% agreement):\n\n"
        text += markdown_table(["dataset", "design", "runs", "agree", "share", "K-retrain -> calibrated"], agree_rows)
        notes += f" {agree_summary}."
    if args.no_record:
        print(text)
    else:
        append("Verdict specificity, power and calibrated agreement (verdict_calibration.py)", text, notes)


if __name__ == "__main__":
    main()
