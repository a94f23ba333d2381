"""Every unlearning method against retraining, on real MedMNIST data.

For each dataset: train one original model (cached in --out-dir), then for each forget design
(a random 20% and a disease-heavy 20%) and seed, run every method through the same library
call as ``medforget unlearn`` (retrain baselines are cached by content, so each is trained once).
Each run's JSON report is kept, so an interrupted benchmark resumes where it stopped.

    python benchmarks/unlearn_bench.py --datasets breastmnist --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _results import append, markdown_table

from medforget.data import load_medmnist
from medforget.engine import TrainConfig
from medforget.methods import list_methods
from medforget.request import design_request
from medforget.train import train
from medforget.unlearn import unlearn

RECIPES = {  # CPU-sized recipes (2 cores): BreastMNIST 20 epochs, PneumoniaMNIST 6 epochs
    "breastmnist": TrainConfig(arch="resnet18", epochs=20, batch_size=128, lr=1e-3, seed=0),
    "pneumoniamnist": TrainConfig(arch="resnet18", epochs=6, batch_size=128, lr=1e-3, seed=0),
}
DESIGNS = {"random20": ("random", 0.2), "disease-heavy20": ("positive-heavy", 0.2)}


def mean_sd(xs: list[float], scale: float = 100.0, digits: int = 1) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    m = statistics.mean(xs) * scale
    return f"{m:.{digits}f} ± {statistics.stdev(xs) * scale:.{digits}f}" if len(xs) > 1 else f"{m:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["breastmnist", "pneumoniamnist"])
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS))
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out-dir", type=Path, default=Path("runs/bench"))
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="tabulate the reports already in --out-dir; run nothing")
    args = ap.parse_args()
    methods = args.methods or ["retrain"] + [m for m in list_methods() if m != "retrain"]

    rows = []
    for name in args.datasets:
        ds = load_medmnist(name)
        folder = args.out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        original = folder / "original.safetensors"
        if not original.exists() and not args.report_only:
            summary = train(ds, RECIPES[name], original, device="cpu", show_progress=False)
            print(f"{name}: original test acc {summary.test.accuracy:.3f} in {summary.seconds:.0f} s", flush=True)
        for design in args.designs:
            kind, fraction = DESIGNS[design]
            per_method: dict[str, list[dict]] = {m: [] for m in methods}
            for seed in args.seeds:
                req = design_request(ds, kind, fraction, seed)
                for m in methods:
                    rep_path = folder / f"{design}-seed{seed}-{m}.report.json"
                    if args.report_only and not rep_path.exists():
                        continue
                    if not rep_path.exists():
                        out = folder / f"{design}-seed{seed}-{m}.safetensors"
                        unlearn(
                            original,
                            req,
                            m,
                            out,
                            report_path=rep_path,
                            device="cpu",
                            seed=seed,
                            force=True,
                            show_progress=False,
                        )
                        out.unlink()  # keep the reports, not 45 MB per run
                        print(f"{name} {design} seed {seed} {m}: done", flush=True)
                    per_method[m].append(json.loads(rep_path.read_text()))
            for m, reps in per_method.items():
                if not reps:
                    continue

                def col(get, reps=reps):
                    return [get(r) for r in reps]

                frac = col(
                    lambda r: (
                        r["cost"]["method_seconds"] / r["cost"]["retrain_seconds"]
                        if r["cost"]["retrain_seconds"]
                        else None
                    )
                )
                rows.append(
                    [
                        name,
                        design,
                        m,
                        len(reps),
                        mean_sd(col(lambda r: r["unlearned"]["retain"]["accuracy"])),
                        mean_sd(col(lambda r: r["unlearned"]["forget"]["accuracy"])),
                        mean_sd(col(lambda r: r["unlearned"]["test"]["accuracy"])),
                        mean_sd(col(lambda r: r["unlearned"]["mia"]["forget_non_member_rate"])),
                        mean_sd(col(lambda r: r["average_gap"])),
                        mean_sd(col(lambda r: r["unlearned"]["test"]["fnr"])),
                        mean_sd(col(lambda r: r["unlearned"]["test"]["fnr"] - r["retrain"]["test"]["fnr"])),
                        mean_sd(frac),
                        mean_sd(col(lambda r: r["cost"]["method_seconds"]), 1.0),
                    ]
                )
    header = [
        "dataset",
        "forget set",
        "method",
        "seeds",
        "retain acc %",
        "forget acc %",
        "test acc %",
        "MIA eff. %",
        "avg gap pts",
        "test FNR %",
        "FNR - retrain pts",
        "time / retrain %",
        "time s",
    ]
    table = markdown_table(header, rows)
    notes = (
        "Mean ± sd over seeds. Targets: SalUn and SalUn-CRA at or under 10% of retrain time with avg gap "
        "under 3 points; SalUn-CRA test FNR at most 1 point above retrain's. Original models and recipes: "
        + "; ".join(
            f"{k}: {v.arch}, {v.epochs} epochs, batch {v.batch_size}, Adam lr {v.lr}"
            for k, v in RECIPES.items()
            if k in args.datasets
        )
        + "."
    )
    if args.no_record:
        print(table)
    else:
        append("Unlearning methods vs retrain (unlearn_bench.py)", table, notes)


if __name__ == "__main__":
    main()
