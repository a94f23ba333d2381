"""Every unlearning method against retraining, on real MedMNIST data (the issue-3 benchmark).

A thin driver over ``medforget.study``: for each dataset one original model, then for each forget
design (a random 20% and a disease-heavy 20%) and seed every method through the same library call
as ``medforget unlearn``. Originals, retrains and finished runs are cached by content, so an
interrupted benchmark resumes where it stopped.

    python benchmarks/unlearn_bench.py --datasets breastmnist --seeds 0 1 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _results import append

from medforget.methods import list_methods
from medforget.study import StudyConfig, markdown_table, read_results, run_study, summarise

RECIPES = {  # CPU-sized recipes (2 cores): BreastMNIST 20 epochs, PneumoniaMNIST 6 epochs
    "breastmnist": {"arch": "resnet18", "epochs": 20, "batch_size": 128, "lr": 1e-3, "seed": 0},
    "pneumoniamnist": {"arch": "resnet18", "epochs": 6, "batch_size": 128, "lr": 1e-3, "seed": 0},
}
DESIGNS = {
    "random20": {"design": "random", "fraction": 0.2},
    "disease-heavy20": {"design": "positive-heavy", "fraction": 0.2},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", nargs="+", default=list(RECIPES))
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS))
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out-dir", type=Path, default=Path("runs/bench"))
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    methods = args.methods or ["retrain"] + [m for m in list_methods() if m != "retrain"]
    cfg = StudyConfig.model_validate(
        {
            "name": "unlearn-bench",
            "datasets": [{"name": d, "train": RECIPES[d]} for d in args.datasets],
            "forget": [{"name": f, **DESIGNS[f]} for f in args.designs],
            "methods": methods,
            "seeds": args.seeds,
            "device": "cpu",
        }
    )
    result = run_study(cfg, args.out_dir, show_progress=False)
    table = markdown_table(*summarise(read_results(result.results_csv)))
    notes = (
        "Mean ± sd over seeds, in percent (points for gaps and differences). Targets: SalUn and SalUn-CRA at or "
        "under 10% of retrain time with avg gap under 3 points; SalUn-CRA test FNR at most 1 point above "
        "retrain's. Recipes: "
        + "; ".join(f"{d}: {RECIPES[d]}" for d in args.datasets)
        + f". Study wall time {result.timings.wall_seconds:.0f} s ({result.timings.runs_done} runs done, "
        f"{result.timings.runs_reused} reused)."
    )
    if args.no_record:
        print(table)
    else:
        append("Unlearning methods vs retrain (unlearn_bench.py)", table, notes)


if __name__ == "__main__":
    main()
