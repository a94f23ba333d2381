"""A study grid through Ray against the local runner, as a user runs them: the same results, and what Ray costs.

Every executor is one ``medforget study`` process, timed from its start to its exit, as a shell
script would see it: the local runner (1 thread), ``--executor ray --num-cpus 1`` (a local Ray
instance started for the run, 1 thread per task: the same work one run at a time, so the
difference is Ray's overhead; target under 5%) and ``--num-cpus 2`` (two cells at once). Each
process pays its own imports and starts with an empty evaluation memo; a Ray run also pays for
starting Ray and for its worker's imports, which the CLI overlaps with its own (``cluster.starting``).

The grid's original and retrains are trained first (a warm-up run), so every measured run does the
same work: each grid cell's methods and their verification, reading models from the shared cache.
The tidy results must be identical but for timings. With ``--repeats`` the executors run again in
reverse order, and the table gives the mean. "Ray CPU s" is the CPU time of Ray's own processes
(raylet, GCS, agents; not the workers) during the run.

    PYTHONPATH=<ray> python benchmarks/ray_study.py --out-dir /tmp/ray-study --repeats 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from _results import append, markdown_table

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


RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def ray_cpu() -> float:
    """CPU seconds so far of Ray's own processes on this machine: raylet, GCS, agents, monitors (not its workers)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        program = " ".join(cmd.split(" ")[:3])  # a binary, or python (-u) and its script
        worker = "default_worker" in program or (cmd.startswith("ray::") and not cmd.startswith(RAY_AGENTS))
        if ("/ray/" in program or cmd.startswith(RAY_AGENTS)) and not worker:
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


class RayCpu:
    """Samples :func:`ray_cpu` while a run goes (Ray's processes end with it): the most it grew by."""

    def __enter__(self) -> RayCpu:
        self.base, self.seconds, self._stop = ray_cpu(), 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.seconds = max(self.seconds, ray_cpu() - self.base)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = max(self.seconds, ray_cpu() - self.base)


FLAGS = ("--no-plots", "--json", "--quiet")
EXECUTORS = {
    "local runner": [],
    "ray, local instance, 1 CPU": ["--executor", "ray", "--num-cpus", "1"],
    "ray, local instance, 2 CPUs": ["--executor", "ray", "--num-cpus", "2"],
}


def study(grid: Path, out: Path, extra: list[str]) -> tuple[float, float, dict]:
    """One ``medforget study`` process: its wall seconds (start to exit), Ray's CPU seconds, its JSON result."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per run, as in each Ray task
    command = [sys.executable, "-m", "medforget", "study", str(grid), "--out", str(out), *FLAGS]
    with RayCpu() as cpu:
        start = time.perf_counter()
        done = subprocess.run(command + extra, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command + extra)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, cpu.seconds, json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/ray-study"))
    ap.add_argument("--repeats", type=int, default=1, help="run every executor this many times, alternating order")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    grid = args.out_dir / "grid.toml"
    grid.write_text(GRID)
    load0 = os.getloadavg()[0]
    study(grid, args.out_dir / "warm", [])  # originals and retrains into the cache
    timed: dict[str, list] = {name: [] for name in EXECUTORS}
    for rep in range(args.repeats):
        for name in list(EXECUTORS) if rep % 2 == 0 else list(EXECUTORS)[::-1]:
            out = args.out_dir / f"{name.replace(' ', '-').replace(',', '')}-{rep}"
            wall, cpu, result = study(grid, out, EXECUTORS[name])
            timed[name].append((wall, cpu, result, rows(out / "results.csv")))
    reference = timed["local runner"][0][3]
    base = sum(t[0] for t in timed["local runner"]) / args.repeats
    table_rows, over = [], {}
    for name, ts in timed.items():
        wall = sum(t[0] for t in ts) / len(ts)
        over[name] = wall / base - 1
        t = ts[-1][2]["timings"]
        table_rows.append([
            name, t["runs_done"], t["originals_trained"], f"{wall:.1f}", " ".join(f"{x[0]:.1f}" for x in ts),
            f"{100 * over[name]:+.1f}%", "" if name == "local runner" else f"{sum(x[1] for x in ts) / len(ts):.1f}",
            "yes" if all(x[3] == reference for x in ts) else "NO",
        ])  # fmt: skip
    one = over["ray, local instance, 1 CPU"]
    same = all(x[3] == reference for ts in timed.values() for x in ts)
    columns = ["executor (one medforget study process each)", "runs done", "originals trained", "wall s (mean)",
               "each run s", "vs local", "Ray CPU s", "same results"]  # fmt: skip
    table = markdown_table(columns, table_rows)
    target = markdown_table(["target", "measured", "met"], [
        ["Ray overhead (a local 1-CPU instance started for the run vs the local runner, same work) < 5%",
         f"{100 * one:+.1f}%", "yes" if one < 0.05 else "no"],
        ["same results as local (all columns but timings)", "ray 1 CPU, ray 2 CPUs", "yes" if same else "no"],
    ])  # fmt: skip
    notes = (
        "Grid: breastmnist, resnet10 (3 epochs), 2 forget designs x 2 seeds x (finetune, salun), 2 retrains "
        "each; the original and retrains come from the cache (warm-up run first), so each row is 8 method runs "
        "and their verification. Each run is a fresh `medforget study` process timed from start to exit (imports, "
        f"Ray's start and stop included), one thread per run everywhere; {args.repeats} run(s) per executor, "
        f"alternating order. 1-minute load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
        f"{os.cpu_count()} cores."
    )
    title = "A study grid through Ray against the local runner, as two CLI processes (ray_study.py)"
    append(title, table + "\n\n" + target, notes, record=not args.no_record)


if __name__ == "__main__":
    main()
