"""A study grid through Ray against the local runner: the same results, and what Ray costs on top.

The grid's original and retrains are trained first (a warm-up run), so every measured run does the
same work: each grid cell's methods and their verification, reading models from the shared cache.
Then, each into a fresh output folder: the local runner (1 thread), Ray with a 1-CPU local instance
(1 thread per task: the same work, one run at a time, so the difference is Ray's overhead; target
under 5%) and Ray with 2 CPUs (two cells at once). The tidy results must be identical but for timings.

    python benchmarks/ray_study.py --out-dir /tmp/ray-study
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import ray
import torch
from _results import append, markdown_table

from medforget.cluster import worker_env
from medforget.config import RayOptions
from medforget.study import load_study_config, run_study
from medforget.study.ray_runner import run_study_on_ray

GRID = """
name = "ray-bench"
seeds = [0, 1]
retrains = 2
methods = [{method = "finetune", label = "ft-1", params = {epochs = 1}}, "salun"]
[[datasets]]
name = "breastmnist"
train = { arch = "resnet10", epochs = 3, batch_size = 32, lr = 0.001, seed = 0 }
[[forget]]
name = "random10"
design = "random"
fraction = 0.1
[[forget]]
name = "malignant-heavy10"
design = "positive-heavy"
fraction = 0.1
"""
TIMING = ("seconds", "time_", "speedup", "_s")


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in csv.DictReader(fh)]


def _warm() -> None:
    import medforget.study.ray_runner  # noqa: F401  (what a first task imports)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/ray-study"))
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "grid.toml").write_text(GRID)
    cfg = load_study_config(args.out_dir / "grid.toml")
    torch.set_num_threads(1)
    load0 = os.getloadavg()[0]
    run_study(cfg, args.out_dir / "warm", plots=False)  # originals and retrains into the cache
    timed = {}
    for name, run in [
        ("local runner", lambda out: run_study(cfg, out, plots=False)),
        ("ray, 1 CPU", lambda out: run_study_on_ray(cfg, out, plots=False, options=RayOptions(num_cpus=1))),
        ("ray, 1 CPU, started and warm", lambda out: run_study_on_ray(cfg, out, plots=False)),
        ("ray, 2 CPUs", lambda out: run_study_on_ray(cfg, out, plots=False, options=RayOptions(num_cpus=2))),
    ]:
        out = args.out_dir / name.replace(" ", "-").replace(",", "")
        if "warm" in name:  # Ray started and a worker warm (imports done) before the clock starts
            t0 = time.perf_counter()
            ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": worker_env(RayOptions())})  # fmt: skip
            ray.get(ray.remote(num_cpus=1)(_warm).remote())
            start_up = time.perf_counter() - t0
        start = time.perf_counter()
        result = run(out)
        timed[name] = (time.perf_counter() - start, result, rows(out / "results.csv"))
        if "warm" in name:
            ray.shutdown()
    base_wall, _, base_rows = timed["local runner"]
    table_rows = []
    for name, (wall, result, got) in timed.items():
        t = result.timings
        vs = f"{100 * (wall / base_wall - 1):+.1f}%"
        same = "yes" if got == base_rows else "NO"
        table_rows.append([name, t.runs_done, t.originals_trained, f"{wall:.1f}", vs, same])
    over = timed["ray, 1 CPU"][0] / base_wall - 1
    steady = timed["ray, 1 CPU, started and warm"][0] / base_wall - 1
    table = markdown_table(["executor", "runs done", "originals trained", "wall s", "vs local", "same results"],
                           table_rows)  # fmt: skip
    target = markdown_table(["target", "measured", "met"], [
        ["Ray overhead (1 CPU vs local, same work) < 5%", f"{100 * over:+.1f}%", "yes" if over < 0.05 else "no"],
        [f"the same once Ray is up and a worker warm (start-up {start_up:.0f} s not counted)", f"{100 * steady:+.1f}%",
         "yes" if steady < 0.05 else "no"],
        ["same results as local (all columns but timings)", "ray 1 CPU, ray 2 CPUs",
         "yes" if all(g == base_rows for _, _, g in timed.values()) else "no"]])  # fmt: skip
    notes = (
        f"Grid: breastmnist, resnet10 (3 epochs), 2 forget designs x 2 seeds x (finetune, salun), 2 retrains "
        "each; the original and retrains come from the cache (warm-up run first), so each row is 8 method runs "
        "and their verification. One thread per run everywhere. Under load: 1-minute load average "
        f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} cores, shared with "
        "other jobs."
    )
    if args.no_record:
        print(table + "\n\n" + target + "\n\n" + notes)
    else:
        append("A study grid through Ray against the local runner (ray_study.py)", table + "\n\n" + target, notes)


if __name__ == "__main__":
    main()
