"""Does a study spend its time training, and does a re-run of a finished study do no work twice?

Runs a study config (first run, unless ``--out`` already holds a finished run of it in one go),
then runs it again into the same folder. Reports the first run's share of wall time outside
forward/backward passes (target under 5%) and the re-run's wall time as a share of the first
run's (target under 5%).

    python benchmarks/study_overhead.py studies/breastmnist.toml --out studies/out/breastmnist
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _results import append, markdown_table

from medforget.study import StudyResult, load_study_config, run_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("config", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="Study folder (reused if it holds a finished run)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    cfg = load_study_config(args.config)
    done = args.out / "study.json"
    if done.exists():
        first = StudyResult.model_validate_json(done.read_text())
        if first.timings.runs_reused or first.config != cfg:
            raise SystemExit(f"{done} is not a single uninterrupted first run of {args.config}; use a new --out")
    else:
        first = run_study(cfg, args.out, show_progress=False)
    t0 = time.perf_counter()
    again = run_study(cfg, args.out, show_progress=False)
    rerun = time.perf_counter() - t0
    t = first.timings
    rows = [
        [
            cfg.name,
            t.runs_done,
            f"{t.wall_seconds:.0f}",
            f"{t.compute_seconds:.0f}",
            f"{100 * t.overhead_fraction:.1f}%",
            "yes" if t.overhead_fraction < 0.05 else "no",
            f"{again.timings.runs_reused}/{again.timings.runs_reused + again.timings.runs_done}",
            f"{rerun:.1f}",
            f"{100 * rerun / t.wall_seconds:.2f}%",
            "yes" if rerun < 0.05 * t.wall_seconds else "no",
        ]
    ]
    header = [
        "study",
        "runs",
        "first run s",
        "forward/backward s",
        "overhead",
        "target < 5%",
        "re-run cache hits",
        "re-run s",
        "re-run / first",
        "target < 5%",
    ]
    table = markdown_table(header, rows)
    notes = (
        "Overhead = 1 - (seconds inside forward/backward passes and optimizer steps, measured by "
        "medforget.engine.compute_clock) / wall time of the whole study, including data loading, checkpoint "
        "writes, evaluation bookkeeping, bootstrap intervals, reports and plots. First run started "
        f"{first.started_at:%Y-%m-%d %H:%M} UTC (command: `{first.command}`)."
    )
    if args.no_record:
        print(table)
    else:
        append(f"Study overhead and re-run cache ({cfg.name})", table, notes)


if __name__ == "__main__":
    main()
