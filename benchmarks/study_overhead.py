"""Does a study spend its time training, and does a re-run of a finished study do no work twice?

Takes a study config and its output folder. If the folder holds no finished study, the study runs
first. Reports, from that run's ``study.json``, the share of wall time outside forward/backward
passes (target under 5%), then runs the study again into the same folder and compares the re-run's
wall time with the compute the study's runs cost (the sum of every run's method time, retrains
included: a lower bound of a first run's wall time, so the ratio is an upper bound; target under 5%).

    python benchmarks/study_overhead.py studies/breastmnist.toml --out studies/out/breastmnist
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _results import append, markdown_table

from medforget.study import StudyResult, load_study_config, read_results, run_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("config", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="Study folder (run first if it holds no finished study)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    cfg = load_study_config(args.config)
    done = args.out / "study.json"
    last = StudyResult.model_validate_json(done.read_text()) if done.exists() else run_study(cfg, args.out)
    rows_before = read_results(last.results_csv)
    run_cost = sum(r["method_seconds"] or 0.0 for r in rows_before)
    t0 = time.perf_counter()
    again = run_study(cfg, args.out)
    rerun = time.perf_counter() - t0
    t = last.timings
    table = markdown_table(
        [
            "study",
            "runs",
            "measured run: runs done / reused",
            "its wall s",
            "its forward/backward s",
            "overhead",
            "target < 5%",
            "sum of run times s",
            "re-run: cache hits",
            "re-run s",
            "re-run / run times",
            "target < 5%",
        ],
        [
            [
                cfg.name,
                len(rows_before),
                f"{t.runs_done} / {t.runs_reused}",
                f"{t.wall_seconds:.0f}",
                f"{t.compute_seconds:.0f}",
                f"{100 * t.overhead_fraction:.1f}%",
                "yes" if t.overhead_fraction < 0.05 else "no",
                f"{run_cost:.0f}",
                f"{again.timings.runs_reused}/{again.timings.runs_reused + again.timings.runs_done}",
                f"{rerun:.1f}",
                f"{100 * rerun / run_cost:.2f}%",
                "yes" if rerun < 0.05 * run_cost else "no",
            ]
        ],
    )
    notes = (
        "Overhead = 1 - (seconds inside forward/backward passes and optimizer steps, measured by "
        "medforget.engine.compute_clock) / wall time of the measured study invocation, including data loading, "
        "evaluation bookkeeping, checkpoint writes, bootstrap intervals, reports and plots. The measured "
        f"invocation started {last.started_at:%Y-%m-%d %H:%M} UTC (`{last.command}`). Original-model training "
        "is not in the sum of run times, so the re-run ratio is an upper bound."
    )
    append(f"Study overhead and re-run cache ({cfg.name})", table, notes, record=not args.no_record)


if __name__ == "__main__":
    main()
